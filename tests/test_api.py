"""The public API (deepclust/__init__.py): the README's example run as written, audio at any rate and
channel count in and out, refusals that name what they got, and nothing from Keras until it is used."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "speechocean762_2spk.wav"


def readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Python API"):]
    return re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)


@pytest.fixture(scope="module")
def shipped():
    import deepclust

    return deepclust.Separator.load("pretrained")


def test_the_readme_example_runs_as_written(tmp_path, monkeypatch, capsys):
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    exec(compile(readme_example(), "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert printed.startswith("2 (2, ") and "[]" in printed  # two voices counted, nothing changed at 8 kHz mono
    written = sorted(p.name for p in (tmp_path / "outdir").iterdir())
    assert written == ["spk1.wav", "spk2.wav"]
    assert sf.info(tmp_path / "outdir" / "spk1.wav").frames == sf.info(EXAMPLE).frames


def test_a_48_khz_stereo_array_comes_back_at_its_rate_and_length_with_the_voices_counted(shipped):
    """The API used to take any array as 8 kHz mono: a stereo one failed inside Keras, and a 48 kHz one was
    counted as one speaker and came back at 8 kHz."""
    signal, rate = sf.read(EXAMPLE)
    high = resample_poly(signal, 6, 1)
    stereo = np.stack([high, 0.8 * high], axis=1)
    out = shipped.separate(stereo, sample_rate=6 * rate, num_speakers="auto")
    assert out.num_speakers == 2 and out.counted and out.sample_rate == 48000
    assert out.sources.shape == (2, len(high)) and out.sources.dtype == np.float32
    assert out.notes[0] == "2 channels downmixed to mono"
    assert out.notes[1].startswith("resampled from 48000 Hz to the model's 8000 Hz and back (separated below 4000 Hz")
    # The same voices as from the 8-kHz file: back at 8 kHz, each source matches one of the direct separation's.
    direct = shipped.separate(signal, 2, sample_rate=rate)
    down = resample_poly(out.sources, 1, 6, axis=1)[:, :len(signal)]
    corr = np.corrcoef(np.concatenate([down, direct.sources]))[:2, 2:]
    assert np.all(np.max(np.abs(corr), axis=1) > 0.9)


def test_the_shipped_model_separates_the_example_by_its_stated_sdri(shipped):
    """README: 11.5 dB SDRi on this mixture of a woman and a man of speechocean762's test speakers."""
    from deepclust.evaluation.metrics import bss_eval, mixture_sdr

    signal, rate = sf.read(EXAMPLE)
    refs = np.stack([sf.read(ROOT / "examples" / f"speechocean762_2spk_s{n}.wav")[0] for n in (1, 2)])
    out = shipped.separate(signal, 2, sample_rate=rate)
    sdri = np.mean(bss_eval(refs, out.sources)["sdr"] - mixture_sdr(refs, signal))
    assert sdri == pytest.approx(11.5, abs=0.5)


@pytest.mark.parametrize("signal, rate, message", [
    (np.zeros((2, 16000)), 8000, r"more channels than samples; pass signal.T.*Received: shape \(2, 16000\)"),
    (np.full(8000, np.nan), 8000, r"8000 samples are NaN or infinite"),
    (np.zeros(0), 8000, r"empty.*Received: shape \(0,\)"),
    (np.zeros((10, 2, 2)), 8000, r"\(samples,\) or \(samples, channels\).*shape \(10, 2, 2\)"),
    (np.zeros(4000), 48000, r"0\.083 s long; expected at least 0\.25 s.*4000 samples at 48000 Hz"),
    (np.zeros(8000), 0, r"Received: sample_rate=0"),
    (np.zeros(8000), 8000.5, r"Received: sample_rate=8000\.5"),
])
def test_what_cannot_be_separated_is_refused_naming_what_it_got(shipped, signal, rate, message):
    import deepclust

    with pytest.raises(deepclust.SeparationError, match=message):
        shipped.separate(signal, 2, sample_rate=rate)


def test_a_rate_given_as_the_count_is_refused():
    import deepclust

    sep = deepclust.Separator(deepclust_tiny_model())
    with pytest.raises(deepclust.SeparationError, match=r"a sample rate goes in sample_rate=.*num_speakers=48000"):
        sep.separate(np.zeros(8000), 48000)


def deepclust_tiny_model():
    from deepclust.config import load_config
    from deepclust.nn.model import build_model

    return build_model(load_config("tiny"))


def test_import_loads_no_backend_and_exports_the_api():
    code = ("import sys, deepclust; assert 'keras' not in sys.modules; "
            "print(sorted(n for n in deepclust.__all__)); "
            "deepclust.save; assert 'keras' not in sys.modules; print(deepclust.__version__)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "'Separator'" in done.stdout and "'save'" in done.stdout
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        import deepclust

        deepclust.nothing  # noqa: B018


def test_train_and_evaluate_are_the_functions_and_evaluate_loads_no_backend():
    """``deepclust.train`` and ``deepclust.evaluate`` are the commands' functions (no longer module names at the
    top: the modules are deepclust.training.train and deepclust.evaluation.evaluate); evaluate's import needs no
    Keras (a model loads it when one is used), train's loads the backend as Separator's does."""
    code = ("import sys, deepclust; assert {'train', 'evaluate'} <= set(deepclust.__all__); "
            "first = deepclust.evaluate; assert 'keras' not in sys.modules; "
            "from deepclust.evaluation.evaluate import evaluate; assert first is evaluate; "
            "first = deepclust.train; assert 'keras' in sys.modules; "
            "from deepclust.training.train import train; assert first is train; print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]
    assert {"train", "evaluate"} <= set(dir(__import__("deepclust")))
