"""Analysing what a model does: image complexity, codec comparison, attention maps and their segmentation, reconstruction metrics, rank statistics, FLOP counts."""
