#!/usr/bin/env bash
# The GPU check, one command on a CUDA machine (about 8 minutes), or on a CPU (noted as such):
#   bash scripts/gpu_wheels.sh     # where PyPI is reachable: .whl/ with what the GPU machine lacks (4-5 MiB)
#   bash scripts/gpu_check.sh      # on the machine, in the checkout with .whl/ beside it
# It installs deepclust's dependencies from .whl/ where they are missing (never TensorFlow), checks what each backend
# sees, and runs scripts/bench.py for configs seed and default under JAX and PyTorch: frames/s of the
# model step alone and of `deepclust train` with the real pipeline (their ratio shows a starved
# accelerator), peak accelerator memory and separation real-time factor. Prints a table and one JSON
# line. Settings: GPU_CHECK_BACKENDS ("jax torch"), GPU_CHECK_CONFIGS ("seed default"),
# GPU_CHECK_STEPS (40 on a GPU, 3 on a CPU), GPU_CHECK_OUT (a folder for the per-run JSON).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
if ! "$PY" -c "import keras, soundfile, sklearn, fast_bss_eval" 2>/dev/null && ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/deepclust-site \
    .whl/*.whl || { echo "gpu_check: installing .whl/ failed" >&2; exit 1; }
  export PYTHONPATH="/tmp/deepclust-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" TF_CPP_MIN_LOG_LEVEL=2 PYTHONUNBUFFERED=1
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  nvidia-smi -L
  STEPS=${GPU_CHECK_STEPS:-40}
else
  echo "gpu_check: no NVIDIA GPU here: running on the CPU ($(nproc) cores), with few steps" >&2
  STEPS=${GPU_CHECK_STEPS:-3}
fi
OUT=${GPU_CHECK_OUT:-$(mktemp -d)}
mkdir -p "$OUT"
status=0
for backend in ${GPU_CHECK_BACKENDS:-jax torch}; do
  KERAS_BACKEND=$backend "$PY" - <<'PY' || status=1
import keras
from deepclust.backend import accelerators, require
require()
print(f"gpu_check: {keras.backend.backend()} sees {accelerators() or 'no GPU (CPU only)'}")
PY
  for config in ${GPU_CHECK_CONFIGS:-seed default}; do
    echo "gpu_check: $backend / $config, $STEPS steps per measurement" >&2
    KERAS_BACKEND=$backend "$PY" scripts/bench.py --config "$config" --steps "$STEPS" > "$OUT/$backend-$config.txt" \
      || { status=1; echo "gpu_check: $backend / $config failed:" >&2; tail -n 30 "$OUT/$backend-$config.txt" >&2; }
    grep '^{' "$OUT/$backend-$config.txt" | tail -n 1 > "$OUT/$backend-$config.json"
  done
done
"$PY" - "$OUT" <<'PY'
import json, sys
from pathlib import Path
runs = [json.loads(p.read_text()) for p in sorted(Path(sys.argv[1]).glob("*.json")) if p.read_text().strip()]
print(f"\n{'backend':<8} {'config':<8} {'device':<28} {'model step':>12} {'train':>10} {'train/model':>11} "
      f"{'peak MiB':>9} {'RTF 10 s':>9} {'RTF 60 s':>9}")
for r in runs:
    v = r["versions"]
    device = ", ".join(v.get("gpus") or []) or f"CPU ({v['cpus']} cores)"
    peak = r.get("peak_accelerator_mib")
    print(f"{v['backend']:<8} {r['config']:<8} {device[:28]:<28} {r['model_fps']:>12,.0f} {r['train_fps']:>10,.0f} "
          f"{r['train_over_model']:>11.2f} {(f'{peak:,.0f}' if peak is not None else 'n/a'):>9} "
          f"{r['separate_10s_rtf']['total']:>9.4f} {r['separate_60s_rtf']['total']:>9.4f}")
print("(frames/s; model step = train_on_batch on fixed tensors; train = `deepclust train` with the real pipeline)")
print(json.dumps({"gpu_check": runs}))
PY
exit $status
