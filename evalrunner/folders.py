"""The keys that only change a job's speed, and the name of a job's folder in a sweep.

RUNTIME_KEYS is the one list of speed-only keys: the fingerprint leaves them out (a rerun that differs only in
them resumes), the collector groups jobs without them, and conf/config.yaml takes Hydra's `exclude_keys` and the
sweep's folder names from the resolvers registered here.
"""

import hashlib
import os
import re
from collections.abc import Sequence

from omegaconf import OmegaConf

# Keys that change how fast a job runs but not what it predicts.
RUNTIME_KEYS = ("batch_size", "num_workers", "dist_timeout_s", "model.latency_s", "rices.batch_size", "rices.cache_dir",
                "index_dir", "reuse_model", "tracking", "model.concurrency", "model.max_retries", "model.timeout_s")
_MAX_NAME = 200  # a job folder's name at most: NAME_MAX is 255 bytes on common file systems
_MAX_VALUE = 40  # a longer value is shortened like a path, so a folder name stays well under NAME_MAX (255)


def _short(value: str) -> str:
    """A path's last component and a hash of the whole value: readable, unique, and free of slashes."""
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    tail = re.sub(r"[^A-Za-z0-9._+-]", "_", os.path.basename(value.rstrip("/" + os.sep)))[:_MAX_VALUE]
    return f"{tail}-{digest}" if tail else digest


def is_runtime_key(key: str) -> bool:
    """A speed-only key or one below it (`tracking.uri` under `tracking`)."""
    return any(key == k or key.startswith(k + ".") for k in RUNTIME_KEYS)


def job_dirname(overrides: Sequence[str]) -> str:
    """Hydra's override_dirname (sorted `key=value` joined by commas, speed-only keys left out), with each value
    that holds a slash or is long (data_root=/a/b, model.path=/x/y, rices.model=org/name) in its short form."""
    lines = []
    shortened: set[str] = set()
    for line in overrides:
        key, sep, value = line.partition("=")
        if is_runtime_key(key.lstrip("+~")):
            continue
        if sep and ("/" in value or os.sep in value or len(value) > _MAX_VALUE):
            line = f"{key}={_short(value)}"
            shortened.add(line.replace("/", "_"))
        lines.append(line.replace("/", "_"))  # a key never holds one; a bare `~key` deletion has no value
    name = ",".join(sorted(lines))
    if len(name) <= _MAX_NAME:
        return name
    # Many path-valued overrides: the first ones that fit, then a hash of the whole name, so the folder stays
    # under the file system's 255 bytes and a rerun with the same overrides still finds it.
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    kept: list[str] = []
    for line in sorted(lines, key=lambda line: (line in shortened, line)):  # plain values (shots=4) first
        if len(",".join([*kept, line])) <= _MAX_NAME - 20:
            kept.append(line)
    return ",".join([*sorted(kept), f"+{len(lines) - len(kept)}-{digest}"])


def _register() -> None:
    OmegaConf.register_new_resolver("evalrunner.job_dirname", lambda task: job_dirname(list(task)), replace=True)
    OmegaConf.register_new_resolver("evalrunner.speed_keys", lambda: list(RUNTIME_KEYS), replace=True)


_register()
