"""Files in and out: images, checkpoints (ours and the official layouts), and the registry of released checkpoints with their downloads."""
