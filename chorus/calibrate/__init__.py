"""``chorus calibrate``: measure which reuse plan each edit class can take on a model, and record it.

Edit pairs (``pairs``) are run as candidate plans (``candidates``) against the full computation of each
target (``measure``); per edit class the plan that saves the most compute within a quality bound is
chosen (``select``) and written into the model folder (``chorus.reuse.calibration``), where the reuse
policy reads it. ``seed_variants`` is the same kind of sweep for identical prompts with another seed.
"""
