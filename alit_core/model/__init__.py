"""The model: its configuration and presets, the VQGAN and VAE base tokenizers, the transformer, ALIT itself, halting, and KARL."""
