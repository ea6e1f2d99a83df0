"""The one atomic writer: a temporary file in the target's folder, flushed to disk, then renamed over the target.

Readers see the old file or the new one, never half of one; a writer that dies leaves only a `.<name>.*.tmp` file,
which the next writer of a cache file removes (evalrunner/cache.py).
"""

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once, at import: mkstemp makes files 0600, but the rest of a team must read results


@contextmanager
def replacing(path: Path) -> Iterator[IO[bytes]]:
    """A binary file whose content replaces `path` when the block ends; an error in the block leaves `path` as is."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: bytes) -> None:
    with replacing(path) as f:
        f.write(data)


def write_json_atomic(path: Path, obj: Any) -> None:
    write_atomic(path, (json.dumps(obj, indent=1, ensure_ascii=False) + "\n").encode())
