"""Model adapters: one interface over diffusers video DiTs and their text encoders."""
