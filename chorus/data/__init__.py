"""Procedural text-to-video data: moving coloured shapes and their captions.

- shapes: render short clips of one moving shape, with the attributes that describe it
- captions: several phrasings per clip, and a parser back to attributes
"""
