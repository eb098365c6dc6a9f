#!/usr/bin/env bash
# The one-command demo: set up .venv, synthesise the demo corpus, train configs/demo.toml
# (15 minutes of training on 2 CPU cores), separate the held-out test mixture, report its
# SDR improvement, evaluate oracle masks and the model on held-out test voices, save figures.
# Everything goes to demo/ (or $DEMO_DIR). Re-running resumes training where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TF_CPP_MIN_LOG_LEVEL=2
DIR=${DEMO_DIR:-demo}
DC=".venv/bin/deepclust"

if [ ! -f "$DIR/train" ]; then
  $DC make-corpus "$DIR" --speakers 200 --utterances 6 --seed 0
fi
$DC train --base "$DIR" --config demo --quiet
$DC separate "$DIR/data/test/mixed.wav" --base "$DIR" --force
.venv/bin/python - "$DIR" <<'PY'
import sys
from pathlib import Path
import numpy as np
from deepclust.dsp import audio
from deepclust.evaluation.metrics import score
d = Path(sys.argv[1]) / "data" / "test"
mix, rate = audio.read(d / "mixed.wav")
refs = np.stack([audio.read(d / f"s{i}.wav", rate)[0] for i in (1, 2)])
ests = np.stack([audio.read(d / "mixed" / f"spk{i}.wav", rate)[0] for i in (1, 2)])
s = score(refs, ests, mix, rate)
print(f"mixed.wav: SDR improvement {s['sdri']:.2f} dB, SI-SDR improvement {s['si_sdri']:.2f} dB")
PY
# Held-out test voices: the corpus's 2-speaker mixture list (wsj0-2mix format, test speakers only).
$DC evaluate "$DIR/test_mix_2spk.txt" --oracle ibm --out "$DIR/eval_ibm" --jobs 2
$DC evaluate "$DIR/test_mix_2spk.txt" --base "$DIR" --out "$DIR/eval_model" --jobs 2
$DC visualize "$DIR/data/test/mixed.wav" --base "$DIR" --sources "$DIR/data/test/s1.wav" "$DIR/data/test/s2.wav" \
  --out "$DIR/separation.png"
$DC visualize --history "$DIR" --out "$DIR/history.png"
echo
echo "demo done: separated $DIR/data/test/mixed/spk1.wav, spk2.wav; figures $DIR/separation.png, $DIR/history.png"
echo "held-out test voices, SDR improvement: model $(.venv/bin/python -c "import json;print(round(json.load(open('$DIR/eval_model/summary.json'))['overall']['sdri']['mean'],2))") dB," \
     "ideal binary mask $(.venv/bin/python -c "import json;print(round(json.load(open('$DIR/eval_ibm/summary.json'))['overall']['sdri']['mean'],2))") dB"
