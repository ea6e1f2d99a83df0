"""RICES as OpenFlamingo computes it: open_clip image embeddings (`rices.backend=open_clip`, e.g. rices.model=ViT-L-14,
rices.pretrained=openai) with open_clip's own preprocessing, and the demo pool's features imported from the
`{dataset}.pkl` that OpenFlamingo's cache_rices_features.py wrote (`rices.import_features=FILE`), so its published
RICES demos are reproduced without recomputing them.

OpenFlamingo's file is a (N, D) tensor whose rows follow its training set's order, which is the order of the dataset's
files and so of our demo pool; a file may instead map ids to rows, {"ids": [...], "features": (N, D)}, and then every
demo pool id must have a row."""

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evalrunner.errors import UserError
from evalrunner.images import open_rgb


class OpenClipEncoder:
    """The interface of features.Encoder: name, identity(), embed(paths)."""

    def __init__(self, name: str, pretrained: str | None, device: torch.device) -> None:
        from evalrunner.models.openflamingo_build import open_clip_name

        try:
            import open_clip
        except ImportError:
            raise UserError("rices.backend=open_clip needs open_clip: bash scripts/install_openflamingo.sh") from None
        self.model_name, self.pretrained, self.device = open_clip_name(name, "rices.model"), pretrained, device
        self.name = name
        try:
            model, _, self.preprocess = open_clip.create_model_and_transforms(self.model_name, pretrained=pretrained)
        except RuntimeError as e:
            raise UserError(f"rices.pretrained={pretrained!r}: {str(e).splitlines()[0]}") from None
        self.model = model.to(device).eval()

    def identity(self) -> tuple[list[Path], dict[str, Any]]:
        files = [Path(self.name)] if self.name.endswith(".json") else []
        if self.pretrained and os.path.isfile(self.pretrained):
            files.append(Path(self.pretrained))
        return files, {"backend": "open_clip", "model": self.model_name, "pretrained": self.pretrained,
                       "preprocessing": repr(self.preprocess)}

    def embed(self, paths: Sequence[str]) -> np.ndarray:
        pixels = []
        for p in paths:
            pixels.append(self.preprocess(open_rgb(p)))
        with torch.inference_mode():
            emb = self.model.encode_image(torch.stack(pixels).to(self.device)).float()
        return torch.nn.functional.normalize(emb, dim=-1).cpu().numpy()


def imported(path: str, pool_ids: Sequence[int]) -> np.ndarray:
    """The demo pool's features, one row per pool example in pool order, float32 and L2-normalised."""
    file = Path(os.path.expanduser(path))
    if not file.is_file():
        raise UserError(f"rices.import_features={path}: no such file (OpenFlamingo's cache_rices_features.py output)")
    try:
        data = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:
        raise UserError(f"rices.import_features={path}: not a torch file of features ({type(e).__name__})") from None
    if isinstance(data, dict) and {"ids", "features"} <= set(data):
        rows = {int(i): r for r, i in enumerate(data["ids"])}
        missing = [i for i in pool_ids if i not in rows]
        if missing:
            raise UserError(f"rices.import_features={path}: {len(missing)} demo pool id(s) have no row, first "
                            f"{missing[0]}; the file was computed for another split or annotation file")
        feats = torch.as_tensor(data["features"])[[rows[i] for i in pool_ids]]
    elif isinstance(data, torch.Tensor):
        if data.ndim != 2 or len(data) != len(pool_ids):
            raise UserError(f"rices.import_features={path}: {tuple(data.shape)} features for a demo pool of "
                            f"{len(pool_ids)} examples; it was computed for another split or annotation file")
        feats = data
    else:
        raise UserError(f"rices.import_features={path}: expected a (N, D) tensor or {{'ids', 'features'}}")
    return torch.nn.functional.normalize(feats.float(), dim=-1).numpy()
