"""Reads back what a W&B offline run wrote: the records of its run-<id>.wandb file (LevelDB log framing, the
layout W&B documents for its transaction log), so the tests check the run itself, not our calls to wandb."""

import struct
from pathlib import Path
from typing import Any

_HEADER = 7  # b":W&B", a 2-byte magic, a version byte
_BLOCK = 32768
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def _payloads(data: bytes) -> list[bytes]:
    assert data[:4] == b":W&B", "not a W&B transaction log"
    out, pending, pos = [], b"", _HEADER
    while pos + 7 <= len(data):
        if _BLOCK - pos % _BLOCK < 7:  # a block's tail too short for a record header is padding
            pos += _BLOCK - pos % _BLOCK
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == _FULL:
            out.append(chunk)
        elif kind == _FIRST:
            pending = chunk
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            out.append(pending + chunk)
        else:
            break  # zero padding at the end of the last block
    return out


def records(run_file: Path) -> list[Any]:
    from wandb.proto import wandb_internal_pb2

    parsed = []
    for payload in _payloads(run_file.read_bytes()):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        parsed.append(record)
    return parsed
