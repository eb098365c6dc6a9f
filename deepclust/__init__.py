"""deepclust: Deep Clustering speech separation (Hershey, Chen, Le Roux, Watanabe 2015) with Keras 3."""

__version__ = "0.1.0"

from .backend import choose as _choose_backend

_choose_backend()  # before any module imports Keras: a machine without TensorFlow runs on JAX or PyTorch
