"""The separation stage: a trained network applied to recordings.

The ``Separator`` API (audio at any rate in and out), the clustering of its
embeddings into masks (k-means, or the mask head's masker) with the speaker count, and the
``separate`` command's work on files.
"""
