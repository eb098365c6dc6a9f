"""The evaluation stage: separations scored, reported and drawn.

Test-set discovery, the metrics (SDR/SIR/SAR, SI-SDR, STOI), the evaluation
runner and its report, and the figures: one mixture's separation and a run's
training history.
"""
