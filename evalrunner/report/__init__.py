"""The report of a sweep: score-vs-shots plots, bootstrap intervals per cell, and the diff of two sweeps.

`python -m evalrunner.report SWEEP_DIR [OTHER_SWEEP_DIR]`; the plots need the `report` extra (matplotlib).
"""
