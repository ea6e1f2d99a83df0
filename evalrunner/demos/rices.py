"""RICES (OpenFlamingo's `eval/rices.py`): each test item's demos are the demo-split examples whose images are most
similar to its own, by the dot product of L2-normalised CLIP image embeddings; the most similar comes last.

Ties break by position in the demo split (earlier first), and floating-point noise never decides: a float32 matrix
product only shortlists candidates, with a margin larger than its worst-case rounding error, and the shortlist is
ranked by float64 dot products of the float32 features, computed in a fixed order. Features are computed once per
distinct image, so the examples of one image (several questions) tie exactly.
"""

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, MissingMandatoryValue

from evalrunner import cache, distributed
from evalrunner.datasets import index
from evalrunner.datasets.base import Dataset, Item, resolve
from evalrunner.demos.features import Encoder, features
from evalrunner.errors import UserError

log = logging.getLogger("evalrunner")
_MAX_SCORES = 1 << 24  # floats of one chunk's similarity matrix (64 MiB)


def _exact(queries: np.ndarray, pool: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """float64 similarities of each query to its candidate rows. Products of float32s are exact in float64 and each
    row is summed on its own (numpy's pairwise sum along the last axis), so the value is the same bits every run."""
    out = np.empty(cand.shape)
    for s in range(0, len(cand), 8):  # small blocks stay in cache
        block = np.multiply(pool[cand[s : s + 8]], queries[s : s + 8, None, :], dtype=np.float64)
        out[s : s + 8] = block.sum(axis=-1)
    return out


def retrieve(queries: np.ndarray, pool: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k pool rows most similar to each query, most similar first, ties by row index: (indices, float64 sims)."""
    n, d = pool.shape
    k = min(k, n)
    # |error| of a float32 dot product of unit vectors is below d * 2**-24 (Higham's bound); each side may err.
    margin = 4 * d * 2.0**-24
    width = min(n, k + 16)
    pool = np.array(pool, dtype=np.float32)  # into memory once: a memory-mapped pool is read by every chunk
    pool_t = torch.from_numpy(pool)
    idx, sims = np.empty((len(queries), k), dtype=np.int64), np.empty((len(queries), k))
    chunk = max(1, _MAX_SCORES // max(n, 1))
    for start in range(0, len(queries), chunk):
        q = np.array(queries[start : start + chunk], dtype=np.float32)
        scores = torch.from_numpy(q) @ pool_t.T
        top, cand = (t.numpy() for t in torch.topk(scores, width, dim=1))
        exact = _exact(q, pool, cand)
        order = np.lexsort((cand, -exact), axis=1)[:, :k]
        idx[start : start + len(q)] = np.take_along_axis(cand, order, axis=1)
        sims[start : start + len(q)] = np.take_along_axis(exact, order, axis=1)
        # Rows whose near-ties run past the shortlist: rank every row within the margin of the k-th.
        for row in np.flatnonzero(top[:, -1] >= top[:, k - 1] - margin) if width < n else ():
            c = np.flatnonzero(scores[row].numpy() >= top[row, k - 1] - margin)
            e = _exact(q[row : row + 1], pool, c[None])[0]
            o = np.lexsort((c, -e))[:k]
            idx[start + row], sims[start + row] = c[o], e[o]
    return idx, sims


class RicesSampler:
    """Demos looked up from a table built once for every test item of the job."""

    def __init__(self, pool: Sequence[Item], table: dict[int, list[int]]) -> None:
        self.pool, self.table = pool, table

    def __call__(self, item: Item) -> list[Item]:
        return [self.pool[i] for i in self.table[item.id]]


def _distinct(paths: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Distinct paths in order of first appearance, and each input's row among them."""
    rows: dict[str, int] = {}
    index = np.array([rows.setdefault(p, len(rows)) for p in paths], dtype=np.int64)
    return list(rows), index


def select(items: Sequence[Item], item_rows: np.ndarray, item_feats: np.ndarray, pool: Sequence[Item],
           pool_rows: np.ndarray, pool_feats: np.ndarray, shots: int) -> dict[int, list[int]]:
    """Each item's demos as pool indices in prompt order: the `shots` most similar pool items that don't show its
    own image (same image_id or file), ranked by (similarity, pool index), reversed so the most similar is last."""
    members: list[list[int]] = [[] for _ in range(len(pool_feats))]
    for i, r in enumerate(pool_rows):
        members[r].append(i)
    by_image: dict[int, set[int]] = {}
    for image_id, r in zip(index.image_ids(pool), pool_rows.tolist()):  # columns: no Item per pool example
        by_image.setdefault(image_id, set()).add(r)
    path_row = {p: r for p, r in zip(index.image_paths(pool), pool_rows.tolist())}
    own = [by_image.get(it.image_id, set()) | ({path_row[it.image_path]} if it.image_path in path_row else set())
           for it in items]
    # Enough images that, after dropping an item's own, they still hold its `shots` best pool items.
    idx, sims = retrieve(item_feats[item_rows], pool_feats, shots + max(map(len, own), default=0))
    table = {}
    for q, it in enumerate(items):
        cands = [(-s, i) for r, s in zip(idx[q], sims[q]) if r not in own[q] for i in members[r]]
        if len(cands) < shots:
            raise UserError(f"shots={shots}: the demo split has only {len(cands)} examples that show another image "
                            f"than item {it.id}; lower shots")
        table[it.id] = [i for _, i in sorted(cands)[:shots]][::-1]
    return table


def _setting(cfg: DictConfig, key: str) -> object:
    try:
        return cfg.rices[key]
    except MissingMandatoryValue:
        raise UserError(f"rices.{key} is not set: pass rices.{key}=... (a CLIP checkpoint directory or hub id "
                        "for rices.model)") from None


def _encoder(cfg: DictConfig, ranks: distributed.Ranks) -> Any:
    backend = cfg.rices.get("backend", "transformers")
    if backend == "open_clip":  # OpenFlamingo's: open_clip's model and preprocessing
        from evalrunner.demos.open_clip_features import OpenClipEncoder

        pretrained = cfg.rices.get("pretrained")
        return OpenClipEncoder(str(_setting(cfg, "model")), None if pretrained is None else str(pretrained),
                               ranks.device)
    if backend != "transformers":
        raise UserError(f"rices.backend={backend!r}: choose transformers or open_clip")
    return Encoder(str(_setting(cfg, "model")), ranks.device)


def cache_dir(value: object) -> Path:
    """rices.cache_dir, or by default $XDG_CACHE_HOME/evalrunner/rices (~/.cache/evalrunner/rices)."""
    return cache.folder(value, "rices")


def annotation_files(cfg: DictConfig, data_root: Path) -> list[Path]:
    """The files the dataset config names (annotation and split files): part of the features' cache key."""
    values = [v for v in cfg.dataset.values() if isinstance(v, str)]
    return sorted({p for v in values if (p := resolve(data_root, "", v)).is_file()})


def build(cfg: DictConfig, dataset: Dataset, items: Sequence[Item], data_root: Path, ranks: distributed.Ranks,
          shots: int) -> RicesSampler:
    pool = dataset.demo_pool()
    if shots == 0:
        return RicesSampler(pool, {it.id: [] for it in items})
    if shots > len(pool):
        raise UserError(f"shots={shots} is larger than the demo split ({len(pool)} examples); lower shots")
    encoder = _encoder(cfg, ranks)
    folder, batch, files = cache_dir(cfg.rices.cache_dir), int(cfg.rices.batch_size), annotation_files(cfg, data_root)
    if batch < 1:
        raise UserError(f"rices.batch_size={batch}: use a positive number")
    name = cfg.dataset.name
    pool_paths, pool_rows = _distinct(index.image_paths(pool))
    item_paths, item_rows = _distinct([it.image_path for it in items])
    if cfg.rices.get("import_features"):
        from evalrunner.demos.open_clip_features import imported

        rows = imported(str(cfg.rices.import_features), [it.id for it in pool])  # one per example, pool order
        pool_feats = np.empty((len(pool_paths), rows.shape[1]), dtype=np.float32)
        pool_feats[pool_rows] = rows
    else:
        pool_feats = features(ranks, encoder, pool_paths, files, folder, batch, f"{name} demo images")
    item_feats = features(ranks, encoder, item_paths, files, folder, batch, f"{name} test images")
    table = None
    if ranks.is_main and cfg.get("num_classes_in_demos") is not None:  # within classes, as class_conditional
        from evalrunner.demos import class_conditional

        table = class_conditional.rices_table(items, item_rows, item_feats, pool, pool_rows, pool_feats, shots,
                                              class_conditional.num_classes(cfg, dataset.task), int(cfg.seed),
                                              int(cfg.trial), select)
    elif ranks.is_main:
        table = select(items, item_rows, item_feats, pool, pool_rows, pool_feats, shots)
    log.info("RICES: demos of %d test items retrieved from all %d examples of the demo split (query_set_size is "
             "not used). RICES is deterministic: every trial gets the SAME demos, so trials are not independent "
             "draws", len(items), len(pool))
    return RicesSampler(pool, distributed.broadcast(ranks, table))
