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
  $DC make-corpus "$DIR" --speakers 40 --utterances 12 --seed 0
fi
$DC train --base "$DIR" --config demo --quiet
$DC separate "$DIR/data/test/mixed.wav" --base "$DIR" --force
.venv/bin/python - "$DIR" <<'PY'
import sys
from pathlib import Path
import numpy as np
from deepclust import audio
from deepclust.evaluate import score
d = Path(sys.argv[1]) / "data" / "test"
mix, rate = audio.read(d / "mixed.wav")
refs = np.stack([audio.read(d / f"s{i}.wav", rate)[0] for i in (1, 2)])
ests = np.stack([audio.read(d / f"out_{i}.wav", rate)[0] for i in (1, 2)])
s = score(refs, ests, mix, rate)
print(f"mixed.wav: SDR improvement {s['sdri']:.2f} dB, SI-SDR improvement {s['si_sdri']:.2f} dB")
PY
# A held-out test set in wsj0-2mix list form: 2-speaker mixtures of test voices only.
.venv/bin/python - "$DIR" <<'PY'
import random, sys
from pathlib import Path
base = Path(sys.argv[1])
entries = [line.split() for line in (base / "test").read_text().splitlines() if line and not line.startswith("#")]
by_speaker = {}
for path, speaker in entries:
    by_speaker.setdefault(speaker, []).append(path)
rng = random.Random(0)
speakers = sorted(by_speaker)
lines = []
for _ in range(40):
    a, b = rng.sample(speakers, 2)
    gain = round(rng.uniform(0, 2.5), 2)
    lines.append(f"{rng.choice(by_speaker[a])} {gain} {rng.choice(by_speaker[b])} {-gain}")
(base / "test_mixtures.txt").write_text("\n".join(lines) + "\n")
PY
$DC evaluate "$DIR/test_mixtures.txt" --oracle ibm --out "$DIR/eval_ibm" --jobs 2
$DC evaluate "$DIR/test_mixtures.txt" --base "$DIR" --out "$DIR/eval_model" --jobs 2
$DC visualize "$DIR/data/test/mixed.wav" --base "$DIR" --sources "$DIR/data/test/s1.wav" "$DIR/data/test/s2.wav" \
  --out "$DIR/separation.png"
$DC visualize --history "$DIR" --out "$DIR/history.png"
echo
echo "demo done: separated $DIR/data/test/out_1.wav, out_2.wav; figures $DIR/separation.png, $DIR/history.png"
echo "held-out test voices, SDR improvement: model $(.venv/bin/python -c "import json;print(round(json.load(open('$DIR/eval_model/summary.json'))['overall']['sdri']['mean'],2))") dB," \
     "ideal binary mask $(.venv/bin/python -c "import json;print(round(json.load(open('$DIR/eval_ibm/summary.json'))['overall']['sdri']['mean'],2))") dB"
