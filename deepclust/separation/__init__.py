"""The separation stage: a trained network applied to recordings.

The ``Separator`` API (audio at any rate in and out), long signals cut into
segments run through the network in batches and cross-faded back together, the
clustering of the embeddings into masks (k-means; the mask head's masker is its plug-in's) with the
speaker count, and the ``separate`` command's work on files.
"""
