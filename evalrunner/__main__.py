import hydra
from omegaconf import DictConfig

import evalrunner.config  # noqa: F401  (stores the schema that conf/config.yaml extends)
from evalrunner.job import run


@hydra.main(version_base="1.3", config_path="pkg://evalrunner.conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    return run(cfg)


if __name__ == "__main__":
    main()
