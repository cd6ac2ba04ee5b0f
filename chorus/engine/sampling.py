"""Each request's trajectory, stepped by the model's own diffusers scheduler.

The seed: a request's ``seed`` seeds a CPU ``torch.Generator``; its first draw, of the latent's shape in
fp32, is the initial noise: what ``WanPipeline(..., generator=torch.Generator().manual_seed(seed))``
draws for one video. A re-noising sampler (FlowMatchEuler with ``stochastic_sampling``: predict x0, add
fresh noise at the next sigma) takes each step's fresh noise from the same generator, in step order, as
``scheduler.step(..., generator=that generator)`` would. So draw k of the seed's generator is the noise
component of the latent after k steps (draw 0 for deterministic samplers, whose noise is the initial one).

Multistep schedulers (UniPC, Wan2.1's own) keep a history of model outputs per trajectory, so every
request steps a scheduler of its own. A request whose latent was not made by its scheduler's previous
step (it starts mid-trajectory from a reused latent, or Stage 2 took part of it from a source) gets a
fresh scheduler begun at that step: the history is reset, the step is first order (for flow matching,
an Euler step), and the solver's order builds up again from there.
"""

from __future__ import annotations

import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from chorus.models.base import VideoModelAdapter
from chorus.models.catalog import ModelCard
from chorus.models.register import SCHEDULERS


def flow_match_scheduler(shift: float, grid: str, steps: int) -> FlowMatchEulerDiscreteScheduler:
    """diffusers' flow-matching Euler scheduler set to ``steps`` on ``grid`` (see ``ModelCard.sigma_grid``)."""
    scheduler = FlowMatchEulerDiscreteScheduler(shift=shift)
    if grid == "linear":  # the scheduler shifts these and appends the terminal 0
        scheduler.set_timesteps(sigmas=torch.linspace(1, 0, steps + 1)[:-1].tolist())
    elif grid == "default":
        scheduler.set_timesteps(steps)
    else:
        raise ValueError(f"unknown sigma grid {grid!r}")
    return scheduler


def wan_sigmas(steps: int, shift: float = 3.0) -> list[float]:
    """Wan2.1's sampling grid (its UniPC with flow sigmas): sigma = shift s / (1 + (shift - 1) s), s evenly
    from 1 to 0; for sizing and planning a real model's run without loading its scheduler."""
    return [shift * s / (1 + (shift - 1) * s) for s in (1 - i / steps for i in range(steps + 1))]


def card_scheduler(card: ModelCard, steps: int) -> SchedulerMixin:
    """The card's scheduler set to ``steps``: a folder's (class and config from its card), else our own
    model's FlowMatchEuler; pinned ``sigmas`` fix the step count."""
    if card.scheduler is None:
        return flow_match_scheduler(card.flow_shift, card.sigma_grid, steps)
    name = card.scheduler["class"]
    if name not in SCHEDULERS:
        raise ValueError(f"scheduler {name!r} is not supported (one of {', '.join(SCHEDULERS)})")
    import diffusers

    scheduler = getattr(diffusers, name).from_config(card.scheduler["config"])
    if card.sigmas is None:
        scheduler.set_timesteps(steps)
    elif len(card.sigmas) != steps:
        raise ValueError(f"the card pins {len(card.sigmas)} sigmas; {steps} steps were asked")
    else:
        scheduler.set_timesteps(sigmas=list(card.sigmas))
    return scheduler


def make_scheduler(adapter: VideoModelAdapter, steps: int) -> SchedulerMixin:
    return card_scheduler(adapter.card, steps)


_GRIDS: dict[tuple[str, int], tuple[float, ...]] = {}  # (the card's sampling_id, steps) -> sigmas


def sigma_grid(adapter: VideoModelAdapter, steps: int) -> tuple[float, ...]:
    """The noise levels (``steps`` + 1, from ~1 down to 0) the adapter's sampler steps through at ``steps``:
    what planning places its stages by. Read off a scheduler once per sampler and step count; a
    trajectory's own schedulers are ``make_scheduler``'s (multistep ones carry state)."""
    key = (adapter.card.sampling_id, steps)
    if key not in _GRIDS:
        _GRIDS[key] = tuple(make_scheduler(adapter, steps).sigmas.tolist())
    return _GRIDS[key]


class Trajectories:
    """The batch's noise, generators and per-request schedulers (see the module docstring)."""

    def __init__(self, adapter: VideoModelAdapter, seeds: list[int], latent_shape: tuple[int, ...], steps: int):
        self.adapter, self.shape, self.steps = adapter, latent_shape, steps
        first = make_scheduler(adapter, steps)
        self.timesteps, self.sigmas = first.timesteps, first.sigmas
        self.renoising = bool(first.config.get("stochastic_sampling", False))
        self.generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        self.noise = torch.stack([self._draw(g) for g in self.generators]).to(adapter.device)
        self.schedulers = [first] + [make_scheduler(adapter, steps) for _ in seeds[1:]]
        for scheduler in self.schedulers:
            scheduler.set_begin_index(0)
        self.own = [True] * len(seeds)  # latent b was made by its scheduler's previous step

    def _draw(self, generator: torch.Generator) -> torch.Tensor:
        return torch.randn(self.shape, generator=generator, dtype=torch.float32)

    def noise_at(self, seed: int, steps_done: int) -> torch.Tensor:
        """The noise component of seed ``seed``'s latent after ``steps_done`` steps, on the device."""
        generator = torch.Generator().manual_seed(seed)
        for _ in range(steps_done if self.renoising else 0):
            self._draw(generator)
        return self._draw(generator).to(self.adapter.device)

    def start_at(self, b: int, steps_done: int) -> None:
        """Request ``b`` continues from a reused latent after ``steps_done`` steps."""
        self.own[b] = False
        for _ in range(steps_done if self.renoising else 0):  # its draw k stays step k's noise
            self._draw(self.generators[b])

    def borrowed(self, rows: list[int]) -> None:
        """Part of these rows' latents now comes from elsewhere (Stage 2's source)."""
        for b in rows:
            self.own[b] = False

    def step(self, rows: list[int], i: int, velocity: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        """Step ``i`` of each row's scheduler; ``velocity`` and ``latents`` hold the rows in order. fp32 out."""
        out = []
        for j, b in enumerate(rows):
            if not self.own[b]:
                self.schedulers[b] = make_scheduler(self.adapter, self.steps)
                self.schedulers[b].set_begin_index(i)
            extra = {"generator": self.generators[b]} if self.renoising else {}
            sample = self.schedulers[b].step(
                velocity[j : j + 1].float(), self.timesteps[i], latents[j : j + 1].float(), return_dict=False, **extra
            )[0]
            out.append(sample)
            self.own[b] = True
        return torch.cat(out)
