"""Exception types that alit_core raises for problems a user can fix.

Every message says what is wrong and, where possible, what to do about it, so callers
(the CLI, the app) can show ``str(err)`` as is instead of a traceback.
"""


class ALITError(Exception):
    """Base class of every error alit_core raises on purpose."""


class ImageInputError(ALITError, ValueError):
    """An image could not be used: missing, empty, corrupt, truncated, not an image, or too large."""


class CheckpointError(ALITError, ValueError):
    """A checkpoint file could not be loaded: unreadable, wrong layout, or unsupported."""


class DownloadError(CheckpointError):
    """An official checkpoint could not be downloaded (no network, bad address, size mismatch)."""


class ResultsFileError(ALITError, ValueError):
    """A results file of encode-dataset could not be used: not Parquet, without its columns, or naming an
    image that is not in the dataset's folder."""


class DatasetEncodeError(ALITError):
    """A dataset run cannot start or finish (nothing to encode, a conflicting earlier run, ...)."""
