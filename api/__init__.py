"""The HTTP shell (FastAPI): validate, authorise, persist, enqueue. Torch-free; never runs a model."""
