"""deepclust: Deep Clustering speech separation (Hershey, Chen, Le Roux, Watanabe 2015) with Keras 3.

The public API, in a few lines::

    import deepclust
    sep = deepclust.Separator.load("pretrained")   # or a training folder, or a .keras file
    out = sep.separate(signal, sample_rate=sr, num_speakers="auto")   # (samples,) or (samples, channels)
    out.sources                                    # (num_speakers, samples) at sr, as long as the input
    deepclust.save(sep.separate_file("mix.wav"), "outdir")   # outdir/spk1.wav, spk2.wav, ...

``load_config`` reads a config as ``train`` does; ``train(base, config)`` and ``evaluate(test, model=...)``
are the ``train`` and ``evaluate`` commands as functions. Names are imported on first use, so ``import
deepclust`` loads no Keras backend; the first that needs one loads it with
its start-up lines kept off the console (:func:`deepclust.backend.load`).
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("deepclust")
except PackageNotFoundError:  # pragma: no cover  (run from a source tree that was never installed)
    __version__ = "0+unknown"

from .backend import choose as _choose_backend

_choose_backend()  # before any module imports Keras: a machine without TensorFlow runs on JAX or PyTorch

# public name -> (module, name there, whether it needs Keras)
_EXPORTS = {
    "Separator": ("separation.separator", "Separator", True),
    "Separation": ("separation.separator", "Separation", True),
    "SeparationError": ("separation.separator", "SeparationError", True),
    "save": ("separation.files", "save", False),
    "load_config": ("config", "load_config", False),
    "train": ("training.train", "train", True),
    "evaluate": ("evaluation.evaluate", "evaluate", False),
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'deepclust' has no attribute {name!r}")
    module, attribute, needs_keras = _EXPORTS[name]
    if needs_keras:
        from .backend import load

        load()
    value = getattr(import_module(f".{module}", __name__), attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
