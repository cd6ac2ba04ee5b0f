"""Training the project's own text-to-video model (flow matching on procedural clips)."""
