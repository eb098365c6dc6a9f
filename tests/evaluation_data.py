"""Small test sets for the evaluation tests (test_testsets, test_evaluate): generated voices, no corpus."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from conftest import RATE, synth_voice

SECONDS = 1.0


def voices(f0s, seed=0, seconds=SECONDS) -> np.ndarray:
    return np.stack([synth_voice(f0, seconds, seed + i) for i, f0 in enumerate(f0s)])


def write_mixture(root: Path, name: str, sources: np.ndarray, mixture: np.ndarray | None = None,
                  mix_folder: str = "mix") -> None:
    mixture = sources.sum(axis=0) if mixture is None else mixture
    (root / mix_folder).mkdir(parents=True, exist_ok=True)
    sf.write(root / mix_folder / name, mixture, RATE, subtype="FLOAT")
    for i, s in enumerate(sources, start=1):
        (root / f"s{i}").mkdir(exist_ok=True)
        sf.write(root / f"s{i}" / name, s, RATE, subtype="FLOAT")


def make_wsj0_folder(tmp_path: Path) -> Path:
    """tt/ with two good 2-speaker mixtures, one 3-speaker, one short by 40 samples (kept),
    one missing its s2 file, one whose mixture is 0.5 s longer than its sources (skipped)."""
    root = tmp_path / "tt"
    (root / "mix").mkdir(parents=True)
    write_mixture(root, "a.wav", 0.5 * voices([110.0, 190.0], seed=1))
    write_mixture(root, "b.wav", 0.5 * voices([150.0, 260.0], seed=3))
    write_mixture(root, "c3.wav", 0.4 * voices([105.0, 170.0, 280.0], seed=5))
    short = 0.5 * voices([120.0, 210.0], seed=8)
    write_mixture(root, "d_short.wav", short, short.sum(axis=0)[:-40])
    lonely = 0.5 * voices([130.0, 230.0], seed=10)
    write_mixture(root, "e_missing.wav", lonely)
    (root / "s2" / "e_missing.wav").unlink()
    long_mix = np.concatenate([lonely.sum(axis=0), np.zeros(RATE // 2, np.float32)])
    write_mixture(root, "f_long.wav", lonely, long_mix)
    return root


def make_mixture_list(tmp_path: Path) -> Path:
    """A wsj0-2mix list with relative paths: two mixtures and one naming a missing file (line 5)."""
    wav = tmp_path / "wsj" / "wav"
    wav.mkdir(parents=True)
    for name, f0, seed in [("spkA_01", 110.0, 1), ("spkB_01", 200.0, 2), ("spkC_01", 150.0, 3), ("spkD_01", 250.0, 4)]:
        sf.write(wav / f"{name}.wav", synth_voice(f0, SECONDS + 0.1 * seed, seed), RATE)
    path = tmp_path / "wsj" / "mix_2_spk_tt.txt"
    path.write_text(
        "# wsj0-2mix style\n"
        "wav/spkA_01.wav 1.5 wav/spkB_01.wav -1.5\n"
        "\n"
        "wav/spkC_01.wav 0 wav/spkD_01.wav 0\n"
        "wav/nobody.wav 0.5 wav/spkD_01.wav -0.5\n"
    )
    return path
