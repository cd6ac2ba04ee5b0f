"""Chorus: inter-request cache reuse for text-to-video diffusion transformers."""

__version__ = "0.1.0"
