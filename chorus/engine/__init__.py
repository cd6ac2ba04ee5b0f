"""The denoising engine: plain flow-matching sampling and Chorus' three-stage cache reuse."""
