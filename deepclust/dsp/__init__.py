"""The signal processing every stage shares: audio files, mixing, and features.

Reading and writing audio, the wsj0-2mix and peak mixers, the STFT settings,
the STFT and the features, masks and labels computed from it (each training
feature in numpy and beside it in ``keras.ops``), and the layer that computes
the training features inside the training step.
"""
