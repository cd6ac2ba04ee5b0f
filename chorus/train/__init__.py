"""Training the project's own text-to-video model (flow matching on procedural clips).

- config: the training configuration (a dataclass read from JSON)
- data: endless batches of procedural clips with random captions
- loop: the resumable flow-matching loop with EMA weights
- distill: step distillation of a few-step student
- vae: a small ``AutoencoderKLWan`` for a Wan-structured latent space
"""
