"""The request fingerprint: the exact key of lossless reuse.

Two requests with equal fingerprints give the same video (the run is deterministic for fixed inputs), so
a stored video, or a job in flight, can serve the other. Every input that changes the output is hashed:
the model (id, revision, LoRA, sampler), the prompt and negative prompt after the text encoder's own
cleaning, the seed, the steps, the guidance and the shape. A false inequality only costs a missed reuse;
a false equality would serve the wrong video, so the cleaning is never more aggressive than the encoder's.

Torch-free and pure: the API stores it on the job row, the worker on the cache entry.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from typing import Any, Protocol

from chorus.models.catalog import ModelCard
from chorus.namespace import adapter_tag

_WHITESPACE = re.compile(r"\s+")


class FingerprintedRequest(Protocol):
    """The fields of a request (``GenerationRequest``, the API's resolved input) that fix its output."""

    prompt: str
    negative_prompt: str
    seed: int
    num_inference_steps: int
    guidance_scale: float
    num_frames: int
    height: int
    width: int


def request_lora(request: FingerprintedRequest) -> tuple[str, float] | None:
    """A per-request LoRA as (name, scale), from the engine's request or the API's resolved input."""
    lora = getattr(request, "lora", None)
    return lora if lora is None or isinstance(lora, tuple) else (lora.name, lora.scale)


def clean_prompt(prompt: str, text_encoder: str) -> str:
    """The prompt as the model's text encoder sees it, where that is certain.

    UMT5 (Wan2.1 folders) runs diffusers' ``prompt_clean``: html unescaped twice, whitespace runs collapsed
    and stripped (ftfy's repairs only where ftfy is installed: left out here, so such prompts stay apart).
    MiniLM's tokenizer splits on whitespace, so only whitespace runs and ends are cleaned for it."""
    if text_encoder == "umt5":
        prompt = html.unescape(html.unescape(prompt))
    return _WHITESPACE.sub(" ", prompt).strip()


def fingerprint_fields(card: ModelCard, request: FingerprintedRequest) -> dict[str, Any]:
    """What the fingerprint hashes, readable (stored nowhere; for tests and debugging)."""
    lora = None if card.lora is None else {"path": str(card.lora["path"]), "scale": float(card.lora.get("scale", 1))}
    return {
        "model_id": card.model_id,
        "revision": card.revision,
        "lora": lora,
        "adapter": adapter_tag(card, request_lora(request)),
        "sampler": card.sampling_id,
        "prompt": clean_prompt(request.prompt, card.text_encoder),
        "negative_prompt": clean_prompt(request.negative_prompt, card.text_encoder),
        "seed": int(request.seed),
        "steps": int(request.num_inference_steps),
        "guidance_scale": float(request.guidance_scale),
        "frames": int(request.num_frames),
        "height": int(request.height),
        "width": int(request.width),
    }


def request_fingerprint(card: ModelCard, request: FingerprintedRequest) -> str:
    """sha256 hex of ``fingerprint_fields``: equal for requests that give the same video."""
    canonical = json.dumps(fingerprint_fields(card, request), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
