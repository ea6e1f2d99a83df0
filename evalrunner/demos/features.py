"""CLIP image embeddings of a list of images: computed once, by the ranks of the first job that needs them, and then
memory-mapped by every job and rank from a cache file.

The images are cut into fixed global batches (batch i = images[i*B:(i+1)*B], computed by rank i % world), so the
values do not depend on how many ranks computed them. Rank 0 gathers the rows and writes the file atomically.
"""

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from evalrunner import cache, distributed
from evalrunner.errors import UserError
from evalrunner.images import open_rgb

log = logging.getLogger("evalrunner")
FORMAT = "rices-image-features-v1"  # bump when the way features are computed changes


class Encoder:
    """A transformers checkpoint with `get_image_features` (CLIP, SigLIP, ...), loaded only when images need it."""

    def __init__(self, name: str, device: torch.device) -> None:
        try:
            from transformers import AutoImageProcessor
        except ImportError:
            raise UserError("demo_selection=rices needs transformers: pip install 'evalrunner[hf]'") from None

        self.name, self.device = name, device
        try:
            self.processor = AutoImageProcessor.from_pretrained(name)
        except (OSError, ValueError) as e:
            raise UserError(f"rices.model={name!r}: no image processor could be loaded ({str(e).splitlines()[0]}); "
                            "point rices.model at a CLIP checkpoint directory or hub id") from None
        self._model: Any = None

    def identity(self) -> tuple[list[Path], dict[str, Any]]:
        """The checkpoint's files and its preprocessing config: what features depend on besides the images."""
        from transformers.utils import cached_file

        config = self.name if os.path.isdir(self.name) else cached_file(self.name, "config.json")
        if config is None:
            raise UserError(f"rices.model={self.name!r}: no config.json; point it at a CLIP checkpoint")
        folder = Path(config) if os.path.isdir(config) else Path(config).parent
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        return files, {"model": self.name, "preprocessing": self.processor.to_dict()}

    def embed(self, paths: Sequence[str]) -> np.ndarray:
        """L2-normalised image embeddings, float32, one row per path."""
        if self._model is None:
            from transformers import AutoModel

            self._model = AutoModel.from_pretrained(self.name).to(self.device).eval()
        images = []
        for p in paths:
            images.append(open_rgb(p))
        pixels = self.processor(images=images, return_tensors="pt")["pixel_values"].to(self.device)
        with torch.inference_mode():
            out = self._model.get_image_features(pixel_values=pixels)
        # transformers 5 returns a model output whose pooler_output is the projected embedding; 4.x a tensor
        emb = (out if isinstance(out, torch.Tensor) else out.pooler_output).float()
        return torch.nn.functional.normalize(emb, dim=-1).cpu().numpy()


def _compute(ranks: distributed.Ranks, encoder: Encoder, paths: Sequence[str], batch_size: int,
             what: str) -> np.ndarray | None:
    """All rows on rank 0 (None elsewhere), each global batch computed by one rank."""
    batches = range(math.ceil(len(paths) / batch_size))
    mine = batches[ranks.rank :: ranks.world]
    error, parts = None, []
    try:
        for i in tqdm(mine, desc=f"RICES features: {what}", unit="batch", disable=not ranks.is_main):
            parts.append(encoder.embed(paths[i * batch_size : (i + 1) * batch_size]))
    except Exception as e:
        error = f"{type(e).__name__}: {e}"
        log.exception("RICES features failed on rank %d", ranks.rank)
    distributed.check_all_healthy(ranks, error)
    local = np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)
    gathered = distributed.gather_arrays(ranks, local)
    if gathered is None:
        return None
    out = np.empty((len(paths), max(g.shape[1] for g in gathered)), dtype=np.float32)
    for r, part in enumerate(gathered):
        starts = [i * batch_size for i in batches[r :: ranks.world]]
        rows = [min(batch_size, len(paths) - s) for s in starts]
        for s, n, chunk in zip(starts, rows, np.split(part, np.cumsum(rows)[:-1])):
            out[s : s + n] = chunk
    return out


def features(ranks: distributed.Ranks, encoder: Encoder, paths: Sequence[str], annotation_files: Sequence[Path],
             cache_dir: Path, batch_size: int, what: str) -> np.ndarray:
    """The embeddings of `paths` (in order), memory-mapped from the cache, computed first if no valid file is there.

    The key is every annotation file and image (path, size, mtime), the checkpoint's files and preprocessing config.
    """
    status: tuple[str, str] = ("error", "")
    if ranks.is_main:  # errors are sent, not raised, so no other rank waits alone in the broadcast
        try:
            files, config = encoder.identity()
            status = ("ok", cache.key([*annotation_files, *paths, *files], {**config, "format": FORMAT}))
        except FileNotFoundError as e:
            status = ("error", f"dataset ({what}): image or file not found: {e.filename}; check data_root and the "
                               "dataset's paths")
        except UserError as e:
            status = ("error", str(e))
        except OSError as e:
            status = ("error", f"rices.model={encoder.name!r}: {e}; point it at a CLIP checkpoint")
    state, value = distributed.broadcast(ranks, status)
    if state == "error":
        raise UserError(value)
    path = cache_dir / f"{what.replace(' ', '-')}-{value}.npy"

    def build() -> None:
        if ranks.is_main:
            log.info("computing RICES features of %d %s with %s, %d rank(s), global batches of %d -> %s",
                     len(paths), what, encoder.name, ranks.world, batch_size, path)
        rows, error = _compute(ranks, encoder, paths, batch_size, what), None
        if rows is not None:
            try:
                cache.write(path, lambda f: np.lib.format.write_array(f, rows, allow_pickle=False))
            except OSError as e:
                error = f"rices.cache_dir: cannot write {path} ({e}); set rices.cache_dir to a writable folder"
        distributed.check_all_healthy(ranks, error)

    try:
        cache.ensure(path, build, agree=lambda decide: distributed.broadcast(ranks, decide() if ranks.is_main else ""))
    except cache.CacheError as e:
        raise UserError(f"rices.cache_dir: {e}; set rices.cache_dir to a writable folder") from None
    return np.load(path, mmap_mode="r")
