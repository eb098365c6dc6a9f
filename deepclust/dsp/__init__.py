"""The signal processing every stage shares: audio files, mixing, and features.

Reading and writing audio, the wsj0-2mix and peak mixers, the STFT and the
features, masks and labels computed from it (in numpy), and the same training
features in ``keras.ops`` for computing them inside the training step.
"""
