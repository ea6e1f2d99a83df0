import sys
from importlib.metadata import version

import hydra
from omegaconf import DictConfig

import evalrunner.config  # noqa: F401  (stores the schema that conf/config.yaml extends)
from evalrunner.job import run


@hydra.main(version_base="1.3", config_path="pkg://evalrunner.conf", config_name="config")
def _app(cfg: DictConfig) -> float | None:
    return run(cfg)


def main() -> float | None:
    # Hydra's own --version prints Hydra's version; ours names the package a bug report is about.
    if sys.argv[1:] == ["--version"]:
        print(f"evalrunner {version('evalrunner')}")
        return None
    return _app()


if __name__ == "__main__":
    main()
