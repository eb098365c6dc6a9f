"""The training stage: a network trained on the data stage's batches, into a run folder.

Training as named steps and phases, the training objective it asks (and features on the
device, one of them), the run's resume state, callbacks and history.csv, the
lock that keeps one run per folder, and the distribution strategies (JAX's data
parallelism, TensorFlow's distribution API).
"""
