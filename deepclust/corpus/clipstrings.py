"""Short clips of one speaker strung into utterances: each clip trimmed to its speech, joined by short pauses.

Keyword and digit corpora (Speech Commands, FSDD) hold clips of about a second
with silence around the word; a training chunk or a test mixture cut from one
such clip is mostly silence. ``string_clips`` turns each speaker's clips into
utterances of several words, as a reader of a list of words says them: every
clip trimmed to where it is within ``TRIM_DB`` of its loudest frame (plus a
margin), faded in and out, and joined to the next by a pause. ``deepclust
prepare --string-clips`` writes them for training lists; the real-voice test
sets (scripts/real_voices.py) string test speakers' clips the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from ..dsp import audio

TRIM_DB = 40.0          # a frame is speech within this many dB of the clip's loudest frame
TRIM_FRAME_S = 0.016    # frame length of that measure
MARGIN_S = 0.05         # kept on either side of the speech
FADE_S = 0.01           # raised-cosine fade at each cut, so a cut clicks in no spectrum
PAUSE_S = (0.1, 0.3)    # silence between two clips, uniform


@dataclass(frozen=True)
class ClipCount:
    """How many clips go into one string: uniform in [low, high]."""

    low: int
    high: int

    @classmethod
    def parse(cls, text: str) -> "ClipCount":
        """``"4-7"`` or ``"5"``; refused with the form expected otherwise."""
        parts = str(text).split("-")
        try:
            low, high = (int(parts[0]), int(parts[-1])) if len(parts) <= 2 else (0, -1)
        except ValueError:
            low, high = 0, -1
        if not 1 <= low <= high:
            raise ValueError(f"clips per string must be N or LOW-HIGH with 1 <= LOW <= HIGH, such as 4-7. "
                             f"Received: string_clips={text!r}")
        return cls(low, high)


def trim(signal: np.ndarray, rate: int) -> np.ndarray:
    """``signal`` from its first to its last frame within TRIM_DB of its loudest, MARGIN_S kept either side,
    faded in and out; an all-zero signal comes back empty."""
    frame = max(1, int(TRIM_FRAME_S * rate))
    count = max(1, len(signal) // frame)
    energy = np.square(signal[:count * frame].reshape(count, frame)).mean(axis=1) if len(signal) >= frame else \
        np.square(signal).mean(keepdims=True)
    if not np.any(energy > 0):
        return signal[:0]
    loud = np.flatnonzero(energy >= energy.max() * 10.0 ** (-TRIM_DB / 10))
    margin = int(MARGIN_S * rate)
    start, stop = max(0, loud[0] * frame - margin), min(len(signal), (loud[-1] + 1) * frame + margin)
    out = np.array(signal[start:stop], np.float32)
    fade = min(int(FADE_S * rate), len(out) // 2)
    if fade:
        ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(fade) + 0.5) / fade)).astype(np.float32)
        out[:fade] *= ramp
        out[-fade:] *= ramp[::-1]
    return out


def groups(count: int, clips: ClipCount, rng: np.random.Generator) -> list[range]:
    """Consecutive index ranges covering ``range(count)``, each of a size drawn from ``clips``; a remainder
    shorter than ``clips.low`` joins the group before it (a speaker with fewer clips gives one short group)."""
    out, start = [], 0
    while start < count:
        size = int(rng.integers(clips.low, clips.high + 1))
        out.append(range(start, min(count, start + size)))
        start += size
    if len(out) > 1 and len(out[-1]) < clips.low:
        last = out.pop()
        out[-1] = range(out[-1].start, last.stop)
    return out


def string_clips(by_speaker: dict[str, Iterable[Path]], out: Path, clips: ClipCount, rng: np.random.Generator,
                 rate: int | None = None) -> tuple[list[tuple[Path, str]], list[tuple[Path, str]]]:
    """Each speaker's clips in random order, strung ``clips`` at a time into ``out/SPEAKER/SPEAKER_NNN.wav``
    at ``rate`` (None: each speaker's first clip's), each clip used once. Returns ((path, speaker) of each string, (clip, why) of each clip left
    out: unreadable or silent). Existing strings are replaced: they are derived files of this folder."""
    written, skipped = [], []
    for speaker in sorted(by_speaker):
        pieces, speaker_rate = [], rate
        for path in by_speaker[speaker]:
            try:
                signal, speaker_rate = audio.read(path, speaker_rate)
            except audio.AudioError as exc:
                skipped.append((Path(path), str(exc)))
                continue
            speech = trim(signal, speaker_rate)
            if speech.size:
                pieces.append(speech)
            else:
                skipped.append((Path(path), "silent: no sample above zero"))
        order = rng.permutation(len(pieces))
        for n, group in enumerate(groups(len(pieces), clips, rng)):
            joined = []
            for i in group:
                if joined:
                    joined.append(np.zeros(int(rng.uniform(*PAUSE_S) * speaker_rate), np.float32))
                joined.append(pieces[order[i]])
            path = out / _safe(speaker) / f"{_safe(speaker)}_{n:03d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            written.append((audio.write(path, np.concatenate(joined), speaker_rate, overwrite=True), speaker))
    return written, skipped


def _safe(name: str) -> str:
    """A speaker ID as a file name: path separators and other odd characters become ``_``."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).lstrip(".") or "speaker"
