"""The network: the embedding model, its LSTM, its losses, and the files it lives in.

The embedding network and its registered layers, the LSTM on each backend's
whole-sequence kernel, the deep clustering and mask-inference losses, the training
objective (batches, network and loss of a way of training) with the Chimera++ mask
head as one plug-in of it, the shipped pretrained model, and the export of a
network to a SavedModel and an ONNX file.
"""
