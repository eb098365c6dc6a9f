"""The training stage: a network trained on the data stage's batches, into a run folder.

Training as named steps and phases, the run's resume state and callbacks, the
lock that keeps one run per folder, and the distribution strategies (JAX's data
parallelism, TensorFlow's distribution API).
"""
