"""Config schema: the seven sections as dataclasses, the range each value must lie in, and the check of one value.

A config is seven sections (``audio``, ``features``, ``data``, ``augment``,
``model``, ``train``, ``separate``), each a dataclass whose fields carry their units in
the name or comment and their allowed range in their metadata. :func:`check_value`
converts one value read from a file or a flag to its field's type, or raises
:class:`~deepclust.config.values.ConfigError` naming the key, what was expected,
and what was received. Relations between values are :mod:`deepclust.config.rules`'.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..dsp.features import Stft
from .values import ConfigError, toml_value, value_range as _range

# The most voices in a mixture, for training and for separation alike.
MAX_SPEAKERS = 8


@dataclass
class AudioConfig:
    sample_rate: int = field(default=8000, metadata=_range(1000, 192000))  # Hz


@dataclass
class FeatureConfig:
    window_length: int = field(default=256, metadata=_range(16, 8192))  # samples (32 ms at 8 kHz)
    hop_length: int = field(default=64, metadata=_range(1, 4096))  # samples (8 ms at 8 kHz)
    # Bins more than this many dB below the mixture's loudest bin are silent:
    # they carry no weight in the loss and are not clustered.
    silence_db: float = field(default=40.0, metadata=_range(0.0, 200.0, lo_open=True))
    # Scale every mixture to this RMS level (dBFS) before features, so the
    # network sees the same log-magnitude range whatever the recording level.
    input_level_db: float = field(default=-25.0, metadata=_range(-100.0, 0.0))
    # Per-bin loss weight: "binary" (1 per active bin, the original) or "magnitude" (Wang et al. 2018).
    weighting: str = field(default="binary", metadata=_range(choices=("binary", "magnitude")))
    # Compute the training features (STFT, log magnitude, silence, weights, labels) on the device inside
    # the training step (deepclust/training/on_device.py, with the layer of deepclust/dsp/device_features.py
    # from the keras.ops primitives of deepclust/dsp/features.py); the host then only cuts, scales and sums waveforms.
    on_device: bool = False


@dataclass
class DataConfig:
    min_speakers: int = field(default=2, metadata=_range(1, MAX_SPEAKERS))
    max_speakers: int = field(default=2, metadata=_range(1, MAX_SPEAKERS))  # label width
    # Share of training mixtures that hold a single voice (whatever min_speakers says), so the
    # network learns that one voice is one cluster: what --num-speakers auto counts on.
    single_speaker_fraction: float = field(default=0.0, metadata=_range(0.0, 1.0))
    chunk_frames: int = field(default=100, metadata=_range(8, 100000))  # STFT frames per training chunk
    chunk_hop: int = field(default=50, metadata=_range(1, 100000))  # frames between validation chunks
    # "wsj0": sources at equal RMS, then a random gain per source (wsj0-2mix);
    # "peak": each source peak-normalised then scaled by a gain in [peak_gain_min, peak_gain_max) (the original).
    mixing: str = field(default="wsj0", metadata=_range(choices=("wsj0", "peak")))
    level_db: float = field(default=2.5, metadata=_range(0.0, 60.0))  # gain per source uniform in [-level_db, level_db]
    peak_gain_min: float = field(default=0.75, metadata=_range(0.0, 1.0, lo_open=True))
    peak_gain_max: float = field(default=1.0, metadata=_range(0.0, 1.0, lo_open=True))
    valid_mixtures: int = field(default=64, metadata=_range(1, 1000000))  # drawn once, fixed seed
    valid_seed: int = field(default=1234, metadata=_range(0))
    stats_mixtures: int = field(default=200, metadata=_range(1, 1000000))  # for feature mean/variance
    # Processes drawing batches; 0: the training process draws them; -1: by the cores (batch_processes.process_count).
    workers: int = field(default=-1, metadata=_range(-1, 256))
    # Train on whole-utterance mixtures (sources cut to the shortest, at most max_frames) instead of chunk_frames
    # chunks, a batch holding lengths of one bucket of bucket_frames frames (0: padded to its longest).
    whole_utterances: bool = False
    bucket_frames: int = field(default=50, metadata=_range(0, 100000))
    max_frames: int = field(default=800, metadata=_range(8, 100000))
    # Several corpora in one list: speaker-ID prefix -> share of mixtures, e.g. { so762 = 0.7, espeak = 0.3 };
    # each mixture's speakers come from one corpus (data.corpus_groups). Empty: the whole list alike.
    corpus_weights: dict = field(default_factory=dict, metadata=_range(0.0))


def _share():
    return field(default=0.0, metadata=_range(0.0, 1.0))


@dataclass
class AugmentConfig:
    """What :mod:`deepclust.data.augment` does to each training source before it is mixed; all off by default.
    Each source of a mixture gets draws of its own, as if every voice were recorded on its own channel."""

    # Speed perturbation (Ko et al. 2015, continuous): resampled by a factor uniform in [1 - speed, 1 + speed],
    # which moves tempo, pitch and formants together.
    speed: float = field(default=0.0, metadata=_range(0.0, 0.5))
    # Vocal-tract-length perturbation (Jaitly & Hinton 2013): the spectrum's frequency axis warped by a
    # factor uniform in [1 - vtlp, 1 + vtlp] (formants move, the pitch's harmonics move with them).
    vtlp: float = field(default=0.0, metadata=_range(0.0, 0.3))
    tilt_db: float = field(default=0.0, metadata=_range(0.0, 12.0))  # spectral tilt, uniform in +-tilt_db per octave
    eq_db: float = field(default=0.0, metadata=_range(0.0, 24.0))  # one peaking band at a random frequency, +-eq_db
    band_limit: float = _share()  # share of sources band-passed like a telephone line (augment.TELEPHONE_*_HZ)
    codec: float = _share()  # share of sources through G.711 mu-law (8-bit companding, as telephone lines)
    # Share of sources in a room: an exponentially decaying noise impulse response with RT60 uniform in
    # [rt60_min, rt60_max] s and a direct path; the label's target is the reverberant source.
    reverb: float = _share()
    rt60_min: float = field(default=0.2, metadata=_range(0.05, 3.0))
    rt60_max: float = field(default=0.7, metadata=_range(0.05, 3.0))
    noise: float = _share()  # share of sources with a noise floor of their own (white to pink)
    snr_min_db: float = field(default=15.0, metadata=_range(-20.0, 100.0))
    snr_max_db: float = field(default=40.0, metadata=_range(-20.0, 100.0))
    # Recordings instead of the synthetic noise and rooms: a list file ('path [label]' lines) or a Kaldi data
    # directory, relative paths from the base folder. "noise" and "reverb" still say which share of sources
    # get one (augment.ClipBank).
    noise_list: str = ""
    rir_list: str = ""

    @property
    def active(self) -> bool:
        return any((self.speed, self.vtlp, self.tilt_db, self.eq_db, self.band_limit, self.codec,
                    self.reverb, self.noise))


@dataclass
class ModelConfig:
    lstm_layers: int = field(default=2, metadata=_range(1, 16))
    lstm_units: int = field(default=300, metadata=_range(1, 8192))  # per direction
    embedding_dim: int = field(default=40, metadata=_range(1, 1024))
    dropout: float = field(default=0.0, metadata=_range(0.0, 1.0))  # on LSTM inputs
    # Anything but 0 disables TensorFlow's cuDNN LSTM kernel on a GPU (slow).
    recurrent_dropout: float = field(default=0.0, metadata=_range(0.0, 1.0))
    l2: float = field(default=0.0, metadata=_range(0.0, 1.0))  # kernel L2 penalty
    # Chimera++ (Wang, Le Roux, Hershey 2018): a second output beside the embeddings, one
    # softmax mask per speaker slot (data.max_speakers), trained jointly with a permutation-
    # invariant phase-sensitive loss; separate.mask = "network" then uses its masks (deepclust/nn/chimera.py).
    mask_head: bool = False


@dataclass
class TrainConfig:
    optimizer: str = field(default="adam", metadata=_range(choices=("adam", "nadam", "rmsprop", "sgd")))
    learning_rate: float = field(default=1e-3, metadata=_range(0.0, 10.0, lo_open=True))
    clipnorm: float = field(default=200.0, metadata=_range(0.0, None, lo_open=True))
    batch_size: int = field(default=32, metadata=_range(1, 100000))
    epochs: int = field(default=100, metadata=_range(1, 1000000))
    steps_per_epoch: int = field(default=100, metadata=_range(1, 10000000))
    patience: int = field(default=0, metadata=_range(0))  # early stopping on val_loss; 0 = off
    # Halve the learning rate after this many epochs without a better val_loss; 0 = off.
    lr_patience: int = field(default=0, metadata=_range(0))
    lr_factor: float = field(default=0.5, metadata=_range(0.0, 1.0, lo_open=True))
    # "plateau": learning_rate, halved on plateaus if lr_patience > 0; "cosine"/"linear": warm-up over the lr_warmup
    # share of the budget (time_limit, else epochs), then decay to lr_floor x learning_rate at its end.
    lr_schedule: str = field(default="plateau", metadata=_range(choices=("plateau", "cosine", "linear")))
    lr_warmup: float = field(default=0.02, metadata=_range(0.0, 0.5))
    lr_floor: float = field(default=0.01, metadata=_range(0.0, 1.0))
    seed: int = field(default=0, metadata=_range(0))
    # Start from these weights instead of random ones: "pretrained" (the model shipped in the package,
    # deepclust/pretrained_model/), a training folder or a .keras file (deepclust.paths.locate); "" = random.
    # A resumed run ignores it.
    init: str = ""
    time_limit: str = field(default="")  # "" = none; e.g. "90s", "15m", "2h"
    mixed_precision: bool = False
    # Compile the training step: true, false, or "auto", what each backend was measured best with on a CPU
    # (train.JIT_AUTO; RESULTS.md, "Speed").
    jit: bool | str = field(default="auto", metadata=_range(choices=("auto",)))
    # With model.mask_head: loss_alpha x deep clustering + (1 - loss_alpha) x mask inference (Chimera++'s 0.975).
    loss_alpha: float = field(default=0.975, metadata=_range(0.0, 1.0, lo_open=True))


@dataclass
class SeparateConfig:
    num_speakers: int = field(default=2, metadata=_range(1, MAX_SPEAKERS))
    # --num-speakers auto: the most clusters (at most auto_max_speakers) whose k-means centres all have a
    # cosine below auto_max_cosine (2 clusters) or auto_max_cosine_many (3 or more). 0.65/0.75 suit a model
    # trained without single voices, default.toml's 0.8/0.75 one trained with them (RESULTS.md, "Speaker
    # counting"); count_accuracy.py tunes both.
    auto_max_speakers: int = field(default=3, metadata=_range(1, MAX_SPEAKERS))
    auto_max_cosine: float = field(default=0.65, metadata=_range(-1.0, 1.0, lo_open=True))
    auto_max_cosine_many: float = field(default=0.75, metadata=_range(-1.0, 1.0, lo_open=True))
    # "binary" (k-means), "soft" (soft k-means, measured better), or "network": the masks of a
    # mask head (model.mask_head; Chimera++), no clustering; --num-speakers auto still counts on the embeddings.
    mask: str = field(default="soft", metadata=_range(choices=("binary", "soft", "network")))
    # Soft k-means sharpness (distance units), and each active bin's weight in k-means: the mixture's
    # magnitude ("magnitude": the bins a loss with features.weighting = "magnitude" weighs most are the
    # surest) or 1 ("none", the original). Both chosen on validation voices (RESULTS.md, "Weighted k-means").
    soft_temperature: float = field(default=0.3, metadata=_range(0.0, None, lo_open=True))
    kmeans_weighting: str = field(default="magnitude", metadata=_range(choices=("magnitude", "none")))
    kmeans_init: int = field(default=4, metadata=_range(1, 1000))  # k-means restarts
    kmeans_max_bins: int = field(default=60000, metadata=_range(100))  # active bins sampled for fitting
    segment_seconds: float = field(default=8.0, metadata=_range(1.0, None))  # network pass length
    subtype: str = field(default="PCM_16", metadata=_range(choices=("PCM_16", "FLOAT")))


@dataclass
class Config:
    audio: AudioConfig = field(default_factory=AudioConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    separate: SeparateConfig = field(default_factory=SeparateConfig)

    @property
    def stft(self):
        """The STFT settings, :class:`deepclust.dsp.features.Stft`: the features' window and hop at the audio's rate."""
        return Stft(self.features.window_length, self.features.hop_length, self.audio.sample_rate)

    @property
    def num_bins(self) -> int:
        return self.stft.num_bins

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)

    def to_toml(self) -> str:
        lines = ["# Resolved deepclust config: every value this run used."]
        for section, values in self.to_dict().items():
            lines.append(f"\n[{section}]")
            for key, value in values.items():
                lines.append(f"{key} = {toml_value(value)}")
        return "\n".join(lines) + "\n"


# section name -> its dataclass, in the order a config file lists them
SECTIONS = {
    "audio": AudioConfig,
    "features": FeatureConfig,
    "data": DataConfig,
    "augment": AugmentConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "separate": SeparateConfig,
}


def check_value(where: str, f: dataclasses.Field, value: Any) -> Any:
    """Return ``value`` converted to the field's type, or raise ConfigError."""
    expected = f.type if isinstance(f.type, type) else {"int": int, "float": float, "str": str, "bool": bool,
                                                         "dict": dict, "bool | str": (bool, str)}[f.type]
    if expected == (bool, str):  # true, false, or a word among the choices
        if isinstance(value, bool):
            return value
        if value not in f.metadata["choices"]:
            raise ConfigError(f"{where}: expected true, false or one of {', '.join(map(repr, f.metadata['choices']))}. "
                              f"Received: {f.name}={value!r}")
        return value
    if expected is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false. Received: {f.name}={value!r}")
    elif expected is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer. Received: {f.name}={value!r}")
    elif expected is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number. Received: {f.name}={value!r}")
        value = float(value)
    elif expected is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string. Received: {f.name}={value!r}")
    elif expected is dict:
        return _check_weights(where, f, value)
    meta = f.metadata
    if meta.get("choices") and value not in meta["choices"]:
        raise ConfigError(
            f"{where}: expected one of {', '.join(map(repr, meta['choices']))}. Received: {f.name}={value!r}"
        )
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and (value < lo or (meta.get("lo_open") and value == lo)):
        bound = f"greater than {lo}" if meta.get("lo_open") else f"at least {lo}"
        raise ConfigError(f"{where}: expected a value {bound}. Received: {f.name}={value!r}")
    if hi is not None and value > hi:
        raise ConfigError(f"{where}: expected a value at most {hi}. Received: {f.name}={value!r}")
    return value


def _check_weights(where: str, f: dataclasses.Field, value: Any) -> dict[str, float]:
    """A table of names to non-negative numbers with a positive sum (or an empty one), as floats."""
    if not isinstance(value, dict) or not all(isinstance(k, str) and k and isinstance(v, (int, float))
                                              and not isinstance(v, bool) and v >= f.metadata["lo"]
                                              for k, v in value.items()):
        raise ConfigError(f"{where}: expected a table of names to weights of at least {f.metadata['lo']}, "
                          f"such as {{ so762 = 0.7, espeak = 0.3 }}. Received: {f.name}={value!r}")
    if value and not sum(value.values()) > 0:
        raise ConfigError(f"{where}: expected weights with a positive sum. Received: {f.name}={value!r}")
    return {k: float(v) for k, v in value.items()}
