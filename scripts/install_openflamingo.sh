#!/usr/bin/env bash
# Makes open_flamingo importable in the current environment without its pins (torch==2.0.1, sentencepiece==0.1.98),
# keeping the installed torch: open_clip and timm pull torchvision, whose default resolution would replace a CPU
# torch with a CUDA build.
set -euo pipefail
export PIP_DISABLE_PIP_VERSION_CHECK=1
py=${PYTHON:-python}
torch_version=$("$py" -c 'import torch; print(torch.__version__.split("+")[0])')
# torchvision's release line follows torch's minor version: torch 2.N pairs with torchvision 0.(N+15).
torchvision_version=$("$py" -c 'import torch; v = torch.__version__.split("+")[0].split("."); print(f"0.{int(v[1]) + 15}")')
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
printf 'torch==%s\n' "$torch_version" >"$constraints"
# Only the torchvision wheels the index has for this torch are CUDA builds; --no-deps stops them pulling CUDA torch.
# The vLLM backend installs the same version the same way, so the two installs agree.
if ! "$py" -c "import importlib.metadata as m, sys; sys.exit(not m.version('torchvision').startswith('$torchvision_version'))" 2>/dev/null; then
    "$py" -m pip install -q --no-deps "torchvision==$torchvision_version.*"
fi
printf 'torchvision==%s\n' "$("$py" -c 'import importlib.metadata as m; print(m.version("torchvision"))')" >>"$constraints"
"$py" -m pip install -q -c "$constraints" open_clip_torch einops einops-exts
"$py" -m pip install -q --no-deps open-flamingo==2.0.1
# That CUDA torchvision's C extension cannot load beside a CPU torch (it links libtorch_cuda), and its module then
# fails on import: it registers fake kernels for torchvision::nms and ::qnms, ops only the extension defines. Those two
# registrations are made conditional, as its other ones already are; transforms (all open_clip uses) work, C ops don't.
# Only done when the import fails, so a torchvision that loads, or one another install fixed already, is left alone.
if ! "$py" -c 'import torchvision' 2>/dev/null; then
    "$py" - <<'PY'
import importlib.util
import pathlib

path = pathlib.Path(importlib.util.find_spec("torchvision").submodule_search_locations[0]) / "_meta_registrations.py"
text = path.read_text()
for op in ("nms", "qnms"):
    text = text.replace(f'@torch.library.register_fake("torchvision::{op}")\n',
                        f'@(torch.library.register_fake("torchvision::{op}") if torchvision.extension._has_ops() '
                        "else (lambda fn: fn))\n")
path.write_text(text)
PY
fi
"$py" - <<'PY'
import open_clip, open_flamingo, torch, torchvision.transforms  # noqa: F401
print(f"install_openflamingo: open_flamingo importable with torch {torch.__version__}, open_clip {open_clip.__version__}")
PY
