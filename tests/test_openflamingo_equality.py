"""model=openflamingo against OpenFlamingo's own code: with the job's demos (demos.json), every prediction equals what
open_flamingo's factory-built model gives through Flamingo.generate with its eval's prompts, 3 beams, length_penalty 0
and its post-processing, on 1, 2 and 3 real torchrun ranks alike.

The reference runs each item alone (batch 1): open_flamingo's LM mixin hides `position_ids` from transformers 5's
generate, so in a left-padded batch its own output shifts with the padding (the fix is tested in test_openflamingo).
Its one change to open_flamingo's code is the least that lets transformers 5 run it: the mixin's `attention_mask`
gets a default, because generate leaves out an all-ones mask.
"""

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import SAMPLE, cli

pytest.importorskip("open_flamingo.src.flamingo", reason="model=openflamingo: bash scripts/install_openflamingo.sh")
from helpers import tiny_openflamingo  # noqa: E402

pytestmark = pytest.mark.slow
TORCHRUN = (sys.executable, "-m", "torch.distributed.run", "--standalone")


@pytest.fixture(scope="module")
def flamingo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return tiny_openflamingo.build_openflamingo(tmp_path_factory.mktemp("openflamingo"))


def _vqa_records() -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]]:
    """question_id -> {question, image, first answer}, from the sample's raw files (test split, demo split)."""
    out = []
    for split in ("val2014", "train2014"):
        qs = json.loads((SAMPLE / "vqav2" / f"v2_OpenEnded_mscoco_{split}_questions.json").read_text())["questions"]
        anns = json.loads((SAMPLE / "vqav2" / f"v2_mscoco_{split}_annotations.json").read_text())["annotations"]
        first = {a["question_id"]: a["answers"][0]["answer"] for a in anns}
        out.append({q["question_id"]: {"question": q["question"], "answer": first[q["question_id"]],
                                       "image": SAMPLE / "coco" / split / f"COCO_{split}_{q['image_id']:012d}.jpg"}
                    for q in qs})
    return out[0], out[1]


def _coco_records() -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]]:
    images = json.loads((SAMPLE / "coco" / "dataset_coco.json").read_text())["images"]
    records = {im["cocoid"]: {"answer": im["sentences"][0]["raw"],  # OpenFlamingo's CaptionDataset: sentences[0]
                              "image": SAMPLE / "coco" / im["filepath"] / im["filename"]} for im in images}
    return records, records


class _MaskDefault:
    def forward(self, input_ids: Any, attention_mask: Any = None, **kwargs: Any) -> Any:
        return super().forward(input_ids, attention_mask, **kwargs)  # type: ignore[misc]


class Reference:
    """OpenFlamingo's eval of one item: its prompt strings, _prepare_images / _prepare_text, Flamingo.generate."""

    def __init__(self, parts: dict[str, str]) -> None:
        import torch
        from open_flamingo.src.utils import extend_instance

        self.model, self.processor, self.tokenizer = tiny_openflamingo.reference_model(parts)
        extend_instance(self.model.lang_encoder, _MaskDefault)
        self.model.load_state_dict(torch.load(parts["checkpoint"]), strict=False)  # as its eval loads it
        self.model.eval()
        self.tokenizer.padding_side = "left"

    def output(self, text: str, images: list[Path], max_new_tokens: int) -> str:
        import torch
        from PIL import Image

        pixels = [self.processor(Image.open(p)) for p in images]
        vision = torch.stack(pixels)[None, :, None]
        enc = self.tokenizer([text], padding="longest", truncation=True, max_length=2000, return_tensors="pt")
        with torch.inference_mode():
            out = self.model.generate(vision, enc["input_ids"], enc["attention_mask"].bool(), min_new_tokens=0,
                                      max_new_tokens=max_new_tokens, num_beams=3, length_penalty=0.0)
        return self.tokenizer.batch_decode(out[:, len(enc["input_ids"][0]) :], skip_special_tokens=True)[0]


def _vqa_prompt(question: str, answer: str | None = None) -> str:  # its eval model's get_vqa_prompt
    return f"<image>Question:{question} Short answer:{answer if answer is not None else ''}" + (
        "<|endofchunk|>" if answer is not None else "")


def _caption_prompt(caption: str | None = None) -> str:  # its eval model's get_caption_prompt
    return f"<image>Output:{caption if caption is not None else ''}" + ("<|endofchunk|>" if caption is not None else "")


def _reference_predictions(ref: Reference, dataset: str, demos: dict[str, list[int]]) -> dict[int, str]:
    from open_flamingo.eval.coco_metric import postprocess_captioning_generation
    from open_flamingo.eval.vqa_metric import postprocess_vqa_generation

    tests, pool = _vqa_records() if dataset == "vqav2" else _coco_records()
    out = {}
    for item_id, demo_ids in demos.items():
        item, shown = tests[int(item_id)], [pool[d] for d in demo_ids]
        if dataset == "vqav2":
            context = "".join(_vqa_prompt(d["question"], d["answer"]) + "\n" for d in shown)
            raw = ref.output(context + _vqa_prompt(item["question"]), [d["image"] for d in shown] + [item["image"]], 5)
            out[int(item_id)] = postprocess_vqa_generation(raw)
        else:
            context = "".join(_caption_prompt(d["answer"].strip()) + "\n" for d in shown)
            raw = ref.output(context + _caption_prompt(), [d["image"] for d in shown] + [item["image"]], 20)
            out[int(item_id)] = postprocess_captioning_generation(raw).replace('"', "")
    # evalrunner strips the surrounding whitespace, which OpenFlamingo's metrics drop themselves
    return {i: re.sub(r"^\s+|\s+$", "", t) for i, t in out.items()}


def test_predictions_equal_openflamingos_own_generation_on_one_two_and_three_ranks(
    tmp_path: Path, flamingo: dict[str, str]
) -> None:
    # One sweep of both datasets per rank count. 5 items in batches of 2: uneven shards, and a left-padded batch
    # beside a single item.
    args = ["-m", "dataset=vqav2,coco", "protocol=openflamingo", "shots=2", "num_samples=5", "batch_size=2",
            *tiny_openflamingo.overrides(flamingo)]
    runs: dict[int, dict[str, Path]] = {}
    for n in (1, 2, 3):
        sweep = tmp_path / f"n{n}"
        proc = cli([f"--nproc_per_node={n}", "-m", "evalrunner", *args, f"hydra.sweep.dir={sweep}"], tmp_path,
                   launcher=TORCHRUN, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[n] = {json.loads((p.parent / "result.json").read_text())["dataset"]: p.parent
                   for p in sweep.rglob("predictions.json")}
    reference = Reference(flamingo)

    for dataset, key, id_key in (("vqav2", "answer", "question_id"), ("coco", "caption", "image_id")):
        job = runs[1][dataset]
        demos = json.loads((job / "demos.json").read_text())
        ours = {r[id_key]: r[key] for r in json.loads((job / "predictions.json").read_text())}
        expected = _reference_predictions(reference, dataset, demos)

        assert len({(runs[n][dataset] / "predictions.json").read_bytes() for n in (1, 2, 3)}) == 1
        assert len(ours) == 5 and all(len(d) == 2 for d in demos.values())
        assert ours == expected, dataset
