"""The data stage: a list's corpus turned into training batches.

The corpus as an index over a cache of its audio, what happens to a source before
mixing (augmentation), the mixer drawing (features, labels) on the fly, the
validation data and feature statistics drawn once, the Keras dataset, and the
worker processes that draw its batches.
"""
