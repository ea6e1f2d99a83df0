"""Where a job ran: device, dtype, ranks, library versions, host and CPU threads, saved in result.json.

The kernels' rounding follows the CPU thread count, so results are byte-identical across rank counts on CPU only
with the same threads per rank; the count is recorded to tell such runs apart.
"""

import os
import platform
import socket
import sys
from importlib import metadata
from typing import Any

import torch

from evalrunner.errors import UserError


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _launcher_gpus() -> Any:
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    launcher = HydraConfig.get().get("launcher") or {}
    return launcher.get("gpus_per_node") or launcher.get("gpus_per_task")


def cuda_expected() -> str | None:
    """What asked for a GPU (a launcher's GPU setting or CUDA_VISIBLE_DEVICES), or None."""
    gpus = _launcher_gpus()
    if gpus:
        return f"hydra.launcher.gpus_per_node={gpus}"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    if visible and visible not in ("-1", "none", "NoDevFiles"):
        return f"CUDA_VISIBLE_DEVICES={visible}"
    return None


def check_cuda() -> None:
    """Refuse to run on CPU when a GPU was asked for but torch cannot use one (e.g. a driver too old for it)."""
    asked = cuda_expected()
    if asked and not torch.cuda.is_available():
        raise UserError(f"{asked} asks for a GPU, but torch.cuda.is_available() is False (torch {torch.__version__}, "
                        f"built for CUDA {torch.version.cuda}); fix the driver or the torch build, or unset it to "
                        "run on CPU")


def describe(device: torch.device, world_size: int, model: Any) -> dict[str, Any]:
    dtype = getattr(model, "dtype", None)
    return {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "dtype": str(dtype).removeprefix("torch.") if dtype is not None else None,  # None: a model without weights
        "world_size": world_size,
        "torch": torch.__version__,
        **({"transformers": _version("transformers")} if "transformers" in sys.modules else {}),
        "pycocoevalcap": _version("pycocoevalcap"),
        "evalrunner": _version("evalrunner"),
        "python": platform.python_version(),
        "host": socket.gethostname(),
        "cpu_threads": torch.get_num_threads(),
    }
