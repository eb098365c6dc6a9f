"""The corpus stage: recordings turned into the lists training and evaluation read.

Lists of real corpora (``prepare``, with short clips strung into utterances), the
speaker-disjoint split, the built-in demo corpus and the synthesisers and voices
it speaks with, and the list formats (``path speakerID``, wsj0-2mix mixture lists)
every later stage reads.
"""
