import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from nltk_resources import nltk_data  # noqa: F401  (session fixture: NLTK data for OK-VQA, built offline)
from omegaconf import DictConfig
from vllm_server import vllm_llava, vllm_server  # noqa: F401  (session fixtures: the engines' tiny LLaVA and server)

import evalrunner.config  # noqa: F401  (stores the schema)

TESTS = Path(__file__).parent
SAMPLE = Path(__file__).parents[1] / "evalrunner" / "sample_data"


def compose_cfg(overrides: Sequence[str] = ()) -> DictConfig:
    with initialize_config_module(config_module="evalrunner.conf", version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def cli(args: Sequence[str], cwd: Path, timeout: float = 300, launcher: Sequence[str] = (sys.executable, "-m"),
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run an evalrunner command in a real process, with tests/ importable for test-only models."""
    full_env = {**os.environ, "PYTHONPATH": str(TESTS), "HYDRA_FULL_ERROR": "0", **(env or {})}
    full_env.pop("HYDRA_FULL_ERROR")
    return subprocess.run([*launcher, *args], cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def sample_root() -> Path:
    return SAMPLE


@pytest.fixture
def java() -> None:
    """Java on PATH for pycocoevalcap's PTB jar: skip without it, but fail in CI, where .ci/test-env.sh installs it."""
    if shutil.which("java") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no java on PATH: .ci/test-env.sh installs default-jre-headless")
        pytest.skip("the PTB tokenizer needs Java (apt-get install default-jre-headless)")


@pytest.fixture(scope="session")
def llava(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight LLaVA checkpoint with a chat template (tests/tiny_hf.py)."""
    pytest.importorskip("transformers", reason="model=hf tests need the hf extra: pip install -e '.[hf]'")
    import tiny_hf

    return tiny_hf.build_llava(tmp_path_factory.mktemp("llava"))


@pytest.fixture(scope="session")
def idefics3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight Idefics3 checkpoint (tests/tiny_hf.py)."""
    pytest.importorskip("transformers", reason="model=hf tests need the hf extra: pip install -e '.[hf]'")
    import tiny_hf

    return tiny_hf.build_idefics3(tmp_path_factory.mktemp("idefics3"))


@pytest.fixture(scope="session", autouse=True)
def _cache_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Dataset indexes and RICES features of the tests' throw-away data go to a temporary cache, never the user's."""
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
