"""The reuse plans a calibration tries: every split of the reusable steps into Stage 1 and Stage 2.

At few steps every length is tried; at many steps, lengths at a few shares of the steps up to half of them
(NIRVANA reuses 5-25 of 50 steps: at many steps a long Stage 1 keeps a layout that an appearance or scene
edit does not touch), so a sweep stays affordable. Stage 2 is tried with and without the source's context
and with a halo of 0 or 1 tokens. Plans leave the policy's repair steps (``StepGrid.reusable_steps``) to run in full.
"""

from __future__ import annotations

from chorus.reuse.calibration import CalibratedPlan

EXHAUSTIVE_STEPS = 4  # up to this many steps every stage length is tried
COARSE_SHARES = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5)  # above it, stage lengths at these shares of the steps
HALOS = (0, 1)


def stage_lengths(num_steps: int) -> list[int]:
    """The Stage-1 and Stage-2 lengths tried at ``num_steps``."""
    if num_steps <= EXHAUSTIVE_STEPS:
        return list(range(num_steps + 1))
    return sorted({round(share * num_steps) for share in COARSE_SHARES})


def candidate_plans(
    num_steps: int, reusable: int, max_k1: int | None = None, max_k2: int | None = None
) -> list[CalibratedPlan]:
    """Every plan that reuses something and at most ``reusable`` steps (Stage 1 at most ``max_k1`` steps,
    Stage 2 at most ``max_k2``: a sweep pruned to what an earlier run did not rule out)."""
    lengths = stage_lengths(num_steps)
    plans = []
    for k1 in lengths:
        for k2 in lengths:
            too_long = (max_k1 is not None and k1 > max_k1) or (max_k2 is not None and k2 > max_k2)
            if too_long or not 0 < k1 + k2 <= reusable:
                continue
            if not k2:
                plans.append(CalibratedPlan(k1, 0))
                continue
            plans += [CalibratedPlan(k1, k2, context, halo) for context in (True, False) for halo in HALOS]
    return plans
