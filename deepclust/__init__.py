"""deepclust: Deep Clustering speech separation (Hershey, Chen, Le Roux, Watanabe 2015) with Keras 3."""

__version__ = "0.1.0"
