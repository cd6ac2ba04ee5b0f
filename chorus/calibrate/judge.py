"""Who reads a calibration's clips: the attribute checker, or a CLIP/SigLIP model the user supplies.

A judge turns a group's clips into per-clip scores in points (0-100 for the checker), so a plan's figures
are its scores' means paired against no reuse on the same pairs and seeds (``chorus.calibrate.select``).

- ``CheckerJudge`` (models that draw the shapes world, vocabulary pairs): every attribute the checker
  reads, "all" over the core ones, and the edited one, each right or wrong per clip. Bounding only the
  edited attribute let a plan keep the new colour and leak the source's size.
- ``ClipJudge`` (any other model, e.g. a Wan2.1 folder): a source's trajectory carries the source's noise,
  so a reused result is another valid sample of the target prompt, not the uncached target's own, and
  PSNR to that target refuses every Stage 1. The judge asks instead what VBench and the paper ask of a
  sample: does it show the prompt (alignment: text-image cosine, per frame and over the clip's mean
  embedding), and does it look like the model's own uncached clips (typicality: cosine to the centroid
  of the uncached runs' frame embeddings and of their clip embeddings). Cosines are in points (x100).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from chorus.eval.checker import read_clips, right_per_clip

if TYPE_CHECKING:
    from chorus.calibrate.measure import PreparedPair


class Judge(Protocol):
    name: str  # "checker" or "clip": which bound reads its scores

    def per_clip(
        self, frames: np.ndarray, group: Sequence[PreparedPair], reference: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Per score name, one value in points per clip of ``frames`` (uint8 (N, F, H, W, 3)), the group's
        targets in order; ``reference``: the same targets' uncached clips."""
        ...


class CheckerJudge:
    """The attribute checker on vocabulary pairs, whose target specs say what each clip must show."""

    name = "checker"

    def per_clip(
        self, frames: np.ndarray, group: Sequence[PreparedPair], reference: np.ndarray
    ) -> dict[str, np.ndarray]:
        right = right_per_clip(read_clips(frames), [p.pair.target_spec for p in group])
        right["edited"] = np.array([right[p.pair.attribute][i] for i, p in enumerate(group)])
        return right


class ClipJudge:
    """A CLIP or SigLIP folder (``transformers.AutoModel``/``AutoProcessor``: anything with
    ``get_text_features`` and ``get_image_features``), run on the CPU or ``device``."""

    name = "clip"

    def __init__(self, folder: Path, device: str = "cpu", batch_size: int = 64) -> None:
        import torch
        from transformers import AutoModel, AutoProcessor

        self.torch, self.device, self.batch_size = torch, device, batch_size
        self.model = AutoModel.from_pretrained(folder).to(device).eval()
        self.processor = AutoProcessor.from_pretrained(folder)
        self._reference: tuple[int, np.ndarray, np.ndarray] | None = None  # id, frame and clip centroids

    def _unit(self, features) -> np.ndarray:
        features = getattr(features, "pooler_output", features)  # newer transformers return an output object
        return unit(features.float().cpu().numpy())

    def embed_frames(self, frames: np.ndarray) -> np.ndarray:
        """Unit embeddings (N, F, D) of every frame."""
        flat = frames.reshape(-1, *frames.shape[2:])
        rows = []
        with self.torch.no_grad():
            for start in range(0, len(flat), self.batch_size):
                images = list(flat[start : start + self.batch_size])
                inputs = self.processor(images=images, return_tensors="pt").to(self.device)
                rows.append(self._unit(self.model.get_image_features(**inputs)))
        return np.concatenate(rows).reshape(*frames.shape[:2], -1)

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        with self.torch.no_grad():
            inputs = self.processor(text=texts, return_tensors="pt", padding="max_length", truncation=True)
            return self._unit(self.model.get_text_features(**inputs.to(self.device)))

    def _centroids(self, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The uncached runs' frame and clip centroids, embedded once per reference (every candidate of a
        kind is judged against the same uncached clips)."""
        if self._reference is None or self._reference[0] != id(reference):
            frames = self.embed_frames(reference)
            frame_centroid = unit(frames.reshape(-1, frames.shape[-1]).mean(axis=0))
            self._reference = (id(reference), frame_centroid, unit(unit(frames.mean(axis=1)).mean(axis=0)))
        return self._reference[1], self._reference[2]

    def per_clip(
        self, frames: np.ndarray, group: Sequence[PreparedPair], reference: np.ndarray
    ) -> dict[str, np.ndarray]:
        frame_centroid, clip_centroid = self._centroids(reference)
        embedded = self.embed_frames(frames)
        clips = unit(embedded.mean(axis=1))
        texts = self.embed_texts([p.target.prompt for p in group])
        return {
            "alignment_frame": 100.0 * np.einsum("nfd,nd->nf", embedded, texts).mean(axis=1),
            "alignment_clip": 100.0 * np.einsum("nd,nd->n", clips, texts),
            "typicality_frame": 100.0 * (embedded @ frame_centroid).mean(axis=1),
            "typicality_clip": 100.0 * (clips @ clip_centroid),
        }


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True).clip(1e-12)
