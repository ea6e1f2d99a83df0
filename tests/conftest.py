"""The tests' fixtures; what tests share besides fixtures is in the tests/helpers package."""

import os
import shutil
from pathlib import Path

import pytest
from helpers import SAMPLE
from helpers.nltk_resources import nltk_data  # noqa: F401  (session fixture: NLTK data for OK-VQA, built offline)
from helpers.vllm_server import vllm_llava, vllm_server  # noqa: F401  (session fixtures: vLLM tiny LLaVA, server)


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
    """A tiny random-weight LLaVA checkpoint with a chat template (tests/helpers/tiny_hf.py)."""
    pytest.importorskip("transformers", reason="model=hf tests need the hf extra: pip install -e '.[hf]'")
    from helpers import tiny_hf

    return tiny_hf.build_llava(tmp_path_factory.mktemp("llava"))


@pytest.fixture(scope="session")
def idefics3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight Idefics3 checkpoint (tests/helpers/tiny_hf.py)."""
    pytest.importorskip("transformers", reason="model=hf tests need the hf extra: pip install -e '.[hf]'")
    from helpers import tiny_hf

    return tiny_hf.build_idefics3(tmp_path_factory.mktemp("idefics3"))


@pytest.fixture(scope="session", autouse=True)
def _cache_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Dataset indexes and RICES features of the tests' throw-away data go to a temporary cache, never the user's."""
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
