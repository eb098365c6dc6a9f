"""Export: the network as a TensorFlow SavedModel and an ONNX file, and what stays outside it written beside.

The exported graph is the network alone: log-magnitude spectrogram (batch, T, F)
in, unit-length embeddings (batch, T, F, D) out (and, for a model with a mask
head, its masks). The feature normalisation is inside it. The STFT before it,
and the clustering, masking and inverse STFT after it, stay outside; ``EXPORT.md``
beside the files says how to compute them, with this model's numbers. The
SavedModel is written by Keras (``model.export``, TensorFlow backend); the ONNX
file by tf2onnx's converter from that SavedModel, where tf2onnx is installed
(``pip install 'deepclust[export]'``).
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .. import atomic, paths

log = logging.getLogger(__name__)

FORMATS = ("savedmodel", "onnx")
SAVEDMODEL_DIRNAME = "savedmodel"
ONNX_FILENAME = "model.onnx"
NOTES_FILENAME = "EXPORT.md"
ONNX_OPSET = 17


class ExportError(ValueError):
    """The model cannot be exported as asked; the message says why and what to do."""


def _targets(out: Path, formats: tuple[str, ...]) -> dict[str, Path]:
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ExportError(f"formats: expected one or more of {', '.join(FORMATS)}. Received: formats={formats!r}")
    named = {"savedmodel": out / SAVEDMODEL_DIRNAME, "onnx": out / ONNX_FILENAME}
    return {f: named[f] for f in FORMATS if f in formats}


def export(model: str | Path = paths.PRETRAINED, out: str | Path = "export", *,
           formats: tuple[str, ...] = FORMATS, force: bool = False) -> dict[str, Path]:
    """Write the network of ``model`` (``"pretrained"``, a run folder or a ``.keras`` file) into ``out``:
    ``savedmodel/``, ``model.onnx`` (skipped, with a warning naming the extra, without tf2onnx), the run's
    ``config.toml`` where there is one, and ``EXPORT.md``. Existing exports are refused unless ``force``.
    Returns the paths written, by format."""
    import keras

    from . import model as model_lib

    if keras.backend.backend() != "tensorflow":
        raise ExportError("export writes TensorFlow graphs and needs the TensorFlow backend: run it as "
                          f"KERAS_BACKEND=tensorflow deepclust export ... Received: backend={keras.backend.backend()!r}")
    out = Path(out)
    targets = _targets(out, tuple(formats))
    existing = [str(p) for p in targets.values() if p.exists()]
    if existing and not force:
        raise FileExistsError(f"{', '.join(existing)}: exists; refusing to overwrite (use --force to replace it).")
    if "onnx" in targets and importlib.util.find_spec("tf2onnx") is None:
        log.warning("no ONNX file: the converter tf2onnx is not installed (pip install 'deepclust[export]')")
        del targets["onnx"]
    model_path = paths.locate(model)
    net = model_lib.load(model_path)
    spec = model_lib.feature_spec(net)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    with tempfile.TemporaryDirectory(dir=out, prefix=".export.") as tmp:
        saved = Path(tmp) / SAVEDMODEL_DIRNAME
        net.export(str(saved), format="tf_saved_model", verbose=False)
        if "onnx" in targets:
            with atomic.replacing(targets["onnx"], suffix=".onnx") as onnx_tmp:
                _convert_to_onnx(saved, onnx_tmp)
            written["onnx"] = targets["onnx"]
        if "savedmodel" in targets:
            if targets["savedmodel"].exists():
                shutil.rmtree(targets["savedmodel"])
            saved.rename(targets["savedmodel"])
            written["savedmodel"] = targets["savedmodel"]
    config = paths.saved_config(model_path)
    if config.is_file():
        with atomic.replacing(out / paths.CONFIG_FILENAME) as tmp_config:
            shutil.copyfile(config, tmp_config)
    atomic.write_text(out / NOTES_FILENAME, notes(model_path, spec, net, written))
    return written


def _convert_to_onnx(saved: Path, target: Path) -> None:
    """tf2onnx's converter, through its command line (its public interface), on the SavedModel."""
    cmd = [sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(saved), "--output", str(target),
           "--opset", str(ONNX_OPSET)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise ExportError(f"tf2onnx could not convert the network (exit {done.returncode}); the SavedModel exports "
                          f"alone with --format savedmodel. tf2onnx said:\n{tail}")


def notes(model_path: Path, spec, net, written: dict[str, Path]) -> str:
    """EXPORT.md: what the exported graph takes and gives, and the steps outside it with this model's numbers."""
    from . import chimera

    dim = int(net.outputs[0].shape[-1])
    bins = spec.stft.num_bins
    files = "\n".join(f"- `{p.name}`: {'TensorFlow SavedModel' if f == 'savedmodel' else f'ONNX, opset {ONNX_OPSET}'}"
                      for f, p in written.items())
    mask_head = chimera.EXPORT_NOTE if chimera.has_mask_head(net) else ""
    return f"""# Exported deepclust network

From `{model_path}`.

{files}

## The graph
Input `log_magnitude`: float32 (batch, T, {bins}), T frames of any length.
Output: float32 (batch, T, {bins}, {dim}) embeddings of unit length, one per time-frequency bin.
The per-frequency mean and variance of the training features are inside the graph.
{mask_head}
## Outside it: the features (before)
1. Audio as mono float32 at {spec.sample_rate} Hz (downmix and resample first).
2. Level: multiply the mixture by `10 ** ({spec.input_level_db} / 20) / rms(mixture)` (not for digital
   silence, rms below 1e-6); divide the separated sources by the same gain at the end.
3. STFT: window `sqrt(scipy.signal.windows.hann({spec.window_length}, sym=False))`, hop {spec.hop_length}, FFT size
   {spec.window_length}, one-sided ({bins} bins), frames centred on multiples of the hop, with scipy's
   `ShortTimeFFT` conventions (`deepclust.dsp.features.stft`).
4. Features: `log(max(|X|, 1e-8))` (natural log).

## Outside it: the separation (after)
5. Active bins: those within {spec.silence_db} dB of the loudest bin of the segment.
6. k-means (k speakers) on the active bins' embeddings; deepclust weighs each bin by the mixture's
   magnitude and uses soft k-means (`deepclust.separation.clustering`).
7. One mask per cluster; each source is the mask times the mixture's STFT, inverted with the same window
   and hop (`deepclust.dsp.features.istft`), divided by the gain of step 2.

Long files: deepclust runs the network on segments and cross-fades them (`deepclust.separation.separator`).
"""
