"""Procedural text-to-video data: moving coloured shapes and their captions."""
