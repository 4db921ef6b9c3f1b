"""Whole datasets: a folder of images encoded into a Parquet file of one row per image, and that file read back."""
