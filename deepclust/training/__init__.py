"""The training stage: a network trained on the data stage's batches, into a run folder.

Training as named steps, the training objective it asks (and features on the device, one of
them), the run's resume state, callbacks and history.csv, the lock that keeps one run per folder,
and the distribution strategies (``strategy``: the one for the backend and JAX's data parallelism;
``tf_strategy``: TensorFlow's).
"""
