#!/usr/bin/env bash
# Download, into .whl/, the wheels a GPU machine needs besides what it already has (JAX, PyTorch,
# numpy, scipy, scikit-learn, h5py, ml-dtypes, rich, absl-py, packaging): deepclust's own
# dependencies for the JAX and PyTorch backends, never TensorFlow. Run it where pip reaches PyPI,
# then carry .whl/ to the machine with the checkout; scripts/gpu_check.sh installs from it.
#   bash scripts/gpu_wheels.sh [PYTHON_VERSION]     (default 3.12, the GPU machines' Python)
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=${1:-3.12}
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
# name==version pins of what this checkout was tested with, so the GPU runs the same code.
PACKAGES=(keras namex optree soundfile cffi pycparser fast_bss_eval typing-extensions)
pins=()
for name in "${PACKAGES[@]}"; do
  version=$("$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name" 2>/dev/null || true)
  pins+=("$name${version:+==$version}")
done
rm -rf .whl && mkdir -p .whl
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  platforms+=(--platform "$p")
done
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$VERSION" --implementation cp \
  "${platforms[@]}" -d .whl "${pins[@]}"
ls -l .whl | awk 'NR > 1 {printf "%8.1f MiB  %s\n", $5 / 1048576, $9; total += $5} END {printf "%8.1f MiB  in all\n", total / 1048576}'
