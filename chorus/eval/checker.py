"""Read a clip's colour, shape, direction, background, size and speed back from its pixels.

No learned model: the vocabulary of ``chorus.data.shapes`` is closed and each
attribute has a plain geometric or colorimetric reading. Generated clips are
blurry and noisy, so every step is robust: medians instead of means, the
largest connected blob per frame, shapes told apart by fitting whole-blob
templates (not by edges), a Theil-Sen slope for the motion.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageCms
from scipy import ndimage, stats

from chorus.data.shapes import BACKGROUNDS, COLORS, DIRECTIONS, SIZES, SPEEDS, ClipSpec, shape_mask

CORE = ("color", "shape", "direction", "background")  # every caption names them; ``all`` is over these
ATTRIBUTES = (*CORE, "size", "speed")  # everything read

# Per shape: its area in units of half-extent squared, and how far its centroid lies below
# its centre (in half-extents): a template of the same area and centroid is fitted to the blob.
_SHAPE_GEOMETRY = {"circle": (np.pi, 0.0), "square": (4.0, 0.0), "triangle": (2.0, 1 / 3)}
_MIN_BLOB_PX = 6  # smaller blobs are noise, not an object
_MAX_BLOB_FRACTION = 0.4  # of the frame; the data's largest object covers ~0.28
_MIN_TEMPLATE_IOU = 0.5  # a blob no shape fits this well is a smear, not an object (data: >= 0.8)
_MIN_FRAMES = 3  # frames with an object needed to read shape and motion
_MIN_SPEED_PX = 0.3  # px/frame; slower than this is "not moving" (the data's slowest is ~1.1)
_BORDER_PX = 2


@dataclass(frozen=True)
class Reading:
    """What the checker sees in one clip; ``None`` where it cannot tell (counts as wrong)."""

    color: str | None
    shape: str | None
    direction: str | None
    background: str | None
    size: str | None = None
    speed: str | None = None
    frames_with_object: int = 0
    shape_iou: dict[str, float] | None = None  # mean IoU of the blob with each fitted shape template
    velocity: tuple[float, float] | None = None  # (dy, dx) px/frame


_LAB = ImageCms.buildTransform(ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB")


def to_lab(rgb: np.ndarray) -> np.ndarray:
    """uint8 (..., 3) sRGB -> float CIELAB (..., 3) with L in 0..100."""
    flat = np.ascontiguousarray(rgb, dtype=np.uint8).reshape(1, -1, 3)
    lab = np.asarray(ImageCms.applyTransform(Image.fromarray(flat), _LAB))
    # PIL stores L scaled to 0..255 and a, b as signed bytes.
    out = np.stack([lab[..., 0] * (100 / 255), lab[..., 1].view(np.int8), lab[..., 2].view(np.int8)], axis=-1)
    return out.astype(np.float32).reshape(rgb.shape)


_COLOR_NAMES = list(COLORS)
_COLOR_LAB = to_lab(np.array(list(COLORS.values()), dtype=np.uint8))
_BACKGROUND_NAMES = list(BACKGROUNDS)
_BACKGROUND_LAB = to_lab(np.array(list(BACKGROUNDS.values()), dtype=np.uint8))
# Mask threshold per background: half the distance to the nearest object colour, so a
# pixel counts as object once it is closer to some object colour than to the background.
_MASK_THRESHOLD = {
    name: 0.5 * float(np.linalg.norm(_COLOR_LAB - lab, axis=-1).min())
    for name, lab in zip(_BACKGROUND_NAMES, _BACKGROUND_LAB)
}


def _nearest(lab: np.ndarray, names: list[str], palette: np.ndarray) -> str:
    return names[int(np.linalg.norm(palette - lab, axis=-1).argmin())]


def read_background(lab: np.ndarray) -> tuple[str, np.ndarray]:
    """Name and measured colour of the background: the median of the border pixels,
    where the data never puts the object and a generated object rarely reaches."""
    border = np.concatenate(
        [
            lab[:, :_BORDER_PX].reshape(-1, 3),
            lab[:, -_BORDER_PX:].reshape(-1, 3),
            lab[:, :, :_BORDER_PX].reshape(-1, 3),
            lab[:, :, -_BORDER_PX:].reshape(-1, 3),
        ]
    )
    measured = np.median(border, axis=0)
    return _nearest(measured, _BACKGROUND_NAMES, _BACKGROUND_LAB), measured


def largest_blob(far: np.ndarray) -> np.ndarray | None:
    """The largest connected blob of a frame's "far from background" pixels, holes
    filled; None if it is too small or too large to be the object."""
    labels, count = ndimage.label(far)
    if count == 0:
        return None
    blob = ndimage.binary_fill_holes(labels == 1 + int(np.bincount(labels.ravel())[1:].argmax()))
    return blob if _MIN_BLOB_PX <= blob.sum() <= _MAX_BLOB_FRACTION * blob.size else None


def read_color(lab: np.ndarray, masks: np.ndarray, measured: np.ndarray) -> str:
    """Nearest palette colour to the median of the object's core: the half of its pixels
    farthest from the background, so blurred edges mixed with it do not pull the hue."""
    pixels = lab[masks]
    distance = np.linalg.norm(pixels - measured, axis=-1)
    core = pixels[distance >= np.median(distance)]
    return _nearest(np.median(core, axis=0), _COLOR_NAMES, _COLOR_LAB)


def template_ious(mask: np.ndarray) -> dict[str, float]:
    """IoU of a blob with each shape drawn at the blob's area and centroid.

    Area and centroid are sums over the whole blob, so noise on its edge moves
    them little, unlike extents or bounding boxes."""
    area = mask.sum()
    height, width = mask.shape
    cy, cx = np.array(ndimage.center_of_mass(mask)) + 0.5  # pixel centres sit at +0.5, as in the renderer
    ious = {}
    for shape, (unit_area, drop) in _SHAPE_GEOMETRY.items():
        half = np.sqrt(area / unit_area)
        template = shape_mask(shape, cy - drop * half, cx, half, max(height, width))[:height, :width]
        ious[shape] = float((template & mask).sum() / (template | mask).sum())
    return ious


def read_motion(masks: np.ndarray, frames: np.ndarray) -> tuple[str | None, tuple[float, float]]:
    """Direction from robust (Theil-Sen) slopes of the centroid track; None if it barely moves."""
    centroids = np.array([ndimage.center_of_mass(masks[f]) for f in frames])
    vy = float(stats.theilslopes(centroids[:, 0], frames).slope)
    vx = float(stats.theilslopes(centroids[:, 1], frames).slope)
    if max(abs(vy), abs(vx)) < _MIN_SPEED_PX:
        return None, (vy, vx)
    step = (int(np.sign(vy)), 0) if abs(vy) >= abs(vx) else (0, int(np.sign(vx)))
    return next(d for d, v in DIRECTIONS.items() if v == step), (vy, vx)


def _nearer(value: float, scale: dict[str, float]) -> str:
    """The name in a two-word scale (``SIZES``, ``SPEEDS``) whose value is nearer, split at their midpoint."""
    (low, a), (high, b) = sorted(scale.items(), key=lambda kv: kv[1])
    return low if value < (a + b) / 2 else high


def read_size(masks: np.ndarray, frames: np.ndarray) -> str:
    """Median over frames of the blob's extent (mean of its height and width), as a share of the frame."""
    extents = []
    for f in frames:
        rows, cols = np.nonzero(masks[f])
        extents.append((np.ptp(rows) + np.ptp(cols) + 2) / 2)
    return _nearer(float(np.median(extents)) / 2 / max(masks.shape[1:]), SIZES)


def read_speed(velocity: tuple[float, float], side: int) -> str:
    """Displacement per frame as a share of the frame."""
    return _nearer(float(np.hypot(*velocity)) / side, SPEEDS)


def read_clip(clip: np.ndarray) -> Reading:
    """Read one uint8 clip (F, H, W, 3)."""
    lab = to_lab(clip)
    background, measured = read_background(lab)
    far = np.linalg.norm(lab - measured, axis=-1) > _MASK_THRESHOLD[background]
    masks = np.zeros_like(far)
    per_frame: dict[int, dict[str, float]] = {}  # template IoUs of frames that show the object
    for f, frame in enumerate(far):
        blob = largest_blob(frame)
        if blob is None:
            continue
        ious = template_ious(blob)
        if max(ious.values()) >= _MIN_TEMPLATE_IOU:
            masks[f], per_frame[f] = blob, ious
    if not per_frame:
        return Reading(None, None, None, background)
    color = read_color(lab, masks, measured)
    frames = np.array(list(per_frame))
    size = read_size(masks, frames)
    if len(per_frame) < _MIN_FRAMES:
        return Reading(color, None, None, background, size, frames_with_object=len(per_frame))
    ious = {shape: float(np.mean([i[shape] for i in per_frame.values()])) for shape in _SHAPE_GEOMETRY}
    direction, velocity = read_motion(masks, frames)
    return Reading(
        color,
        max(ious, key=ious.__getitem__),
        direction,
        background,
        size,
        None if direction is None else read_speed(velocity, max(masks.shape[1:])),  # a still object has none
        frames_with_object=len(per_frame),
        shape_iou=ious,
        velocity=velocity,
    )


def read_clips(clips: np.ndarray | Sequence[np.ndarray]) -> list[Reading]:
    return [read_clip(np.asarray(c)) for c in clips]


def _judged(
    readings: Sequence[Reading], specs: Sequence[ClipSpec], named: Sequence[Collection[str]] | None
) -> dict[str, list[tuple[str | None, str]]]:
    """Per attribute, (read, prompted) of the clips whose prompt names it; attributes no prompt names left out."""
    if len(readings) != len(specs) or not specs or (named is not None and len(named) != len(specs)):
        raise ValueError("need one reading (and one set of named attributes) per spec, and at least one")
    names = named if named is not None else [ATTRIBUTES] * len(specs)
    pairs = {
        a: [(getattr(r, a), getattr(s, a)) for r, s, n in zip(readings, specs, names) if a in n] for a in ATTRIBUTES
    }
    return {a: p for a, p in pairs.items() if p}


def right_per_clip(readings: Sequence[Reading], specs: Sequence[ClipSpec]) -> dict[str, np.ndarray]:
    """Per attribute, and ``all`` (every ``CORE`` attribute), 100 where a clip reads as its spec, else 0: the
    per-clip readings a paired loss is taken over (points)."""
    right = {a: np.array([getattr(r, a) == getattr(s, a) for r, s in zip(readings, specs)]) for a in ATTRIBUTES}
    right["all"] = np.logical_and.reduce([right[a] for a in CORE])
    return {name: 100.0 * values for name, values in right.items()}


def score(
    readings: Sequence[Reading], specs: Sequence[ClipSpec], named: Sequence[Collection[str]] | None = None
) -> dict[str, float]:
    """Per-attribute accuracy, and ``all`` (every ``CORE`` attribute right), each in [0, 1].

    ``named``: per clip, the attributes its prompt names (``named_attributes`` of the prompt); an attribute
    is scored on the clips that name it and left out where none does. None: every clip names every one."""
    result = {a: float(np.mean([r == s for r, s in p])) for a, p in _judged(readings, specs, named).items()}
    result["all"] = float(np.mean([all(getattr(r, a) == getattr(s, a) for a in CORE) for r, s in zip(readings, specs)]))
    return result


def confusions(
    readings: Sequence[Reading], specs: Sequence[ClipSpec], named: Sequence[Collection[str]] | None = None
) -> dict[str, dict[str, int]]:
    """Per attribute judged (see ``score``), counts of wrong readings as ``"prompted->read"`` (most frequent
    first)."""
    return {
        a: dict(Counter(f"{s}->{r or 'unknown'}" for r, s in p if r != s).most_common())
        for a, p in _judged(readings, specs, named).items()
    }
