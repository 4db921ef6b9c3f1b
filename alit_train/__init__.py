"""Training-side tools for ALIT Explorer: registry-only photo data and synthetic scenes."""
