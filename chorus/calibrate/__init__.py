"""``chorus calibrate``: measure which reuse plan each edit kind can take on a model, and record it.

Edit pairs of each kind (``pairs``) are run as candidate plans (``candidates``) against the full computation
of each target (``measure``), their clips read by a judge (``judge``: the attribute checker on every
attribute, or a user's CLIP/SigLIP folder); per kind the plan that saves the most compute within a bound is
chosen (``select``, ``sweep``) and written into the model folder (``chorus.reuse.calibration``), where the
reuse policy reads it. ``seed_variants`` is the same kind of sweep for identical prompts with another seed.
"""
