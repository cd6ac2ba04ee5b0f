"""Model adapters: one interface over diffusers video DiTs and their text encoders.

Modules, one job each:
- base: the adapter interface the engine denoises with (``VideoModelAdapter``, ``PromptEncoding``)
- catalog: which models are installed and what each accepts (``ModelCard``, ``ModelLimits``); torch-free
- wan: ``WanBase`` (what every Wan model shares) and ``WanAdapter`` (the project's own models)
- wan_folder: a diffusers Wan2.1 folder served as ``WanPipeline`` runs it (UMT5, its VAE)
- text: MiniLM token states for cross-attention, pooled embeddings for cache keys
- register: turn a diffusers Wan2.1 folder into an installed model (its card)
- loader: load an installed model by id, once per process
- cli: ``chorus models add`` / ``list``
"""
