"""Loading images for the tokenizer, with one fixed policy for every kind of input.

Policy, in the order it is applied:

1. Sources: a path (``str`` or ``os.PathLike``), ``bytes``/``bytearray``, a binary file
   object, a ``PIL.Image.Image`` or a numpy array (HxW gray, HxWx3 RGB, HxWx4 RGBA;
   ``uint8``, ``uint16``, ``bool`` or float in [0, 1]).
2. Pixel limit: the size in the file header is checked *before* any pixels are decoded,
   and an image with more than ``max_pixels`` pixels (default 50 million) is refused.
   PIL's own decompression-bomb guard (``Image.MAX_IMAGE_PIXELS``) also applies, and its
   warning is treated as a refusal too.
3. EXIF orientation is applied (``ImageOps.exif_transpose``) before anything else, so
   a phone photo comes out the way it is meant to be viewed.
4. Every mode becomes 8-bit RGB. Transparent images (RGBA, LA, PA, palette or colour-key
   transparency) are composited over **white**. 16-bit images are scaled by 1/257,
   32-bit integer images likewise when they fit in 16 bits (else by their maximum), float
   images are clipped to [0, 1] (or [0, 255] when their maximum exceeds 1). CMYK, YCbCr,
   LAB and HSV use PIL's conversions. Animated images use their first frame; the opened
   image's ``info["frames"]`` says how many the file had (1 for a still image).
5. ``square_crop_resize`` crops the largest centred square first and only then resizes
   (bicubic, antialiased with ``reducing_gap=3.0``), so the aspect ratio is never
   distorted and a very elongated image never becomes a huge intermediate.
6. Tensors are float32, shape (3, H, W), values ``uint8 / 255`` in [0, 1].

Every problem with the input raises :class:`alit_core.errors.ImageInputError` (a
``ValueError``) whose message says what is wrong and names the file where there is one;
the underlying exception is chained. PIL's ``ImageFile.LOAD_TRUNCATED_IMAGES`` global is
never changed, so a truncated file is an error rather than a half-grey picture.
"""

from __future__ import annotations

import io
import numbers
import os
import stat
import warnings
from typing import Any

import numpy as np
import torch
from einops import rearrange
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ImageInputError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "image_to_tensor",
    "load_image",
    "open_image",
    "square_crop_resize",
    "tensor_to_image",
]

DEFAULT_MAX_PIXELS = 50_000_000

_WHITE = (255, 255, 255)
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}
_SUPPORTED_DTYPES_TEXT = "uint8, uint16, bool or float with values in [0, 1]"


# --------------------------------------------------------------------------- public API


def open_image(source: Any, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open ``source`` as a fully loaded RGB ``PIL.Image`` following the module policy.

    ``source`` may be a path, bytes, a binary file object, a PIL image or a numpy array.
    Raises :class:`ImageInputError` for anything that cannot be used as an image.
    """
    _check_max_pixels(max_pixels)

    if isinstance(source, Image.Image):
        return _from_pil(source, "<PIL image>", max_pixels)
    if isinstance(source, np.ndarray):
        return _from_numpy(source, max_pixels)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        label = f"<{len(data)} bytes in memory>"
        if not data:
            raise ImageInputError(f"cannot use image {label}: the data is empty (0 bytes)")
        return _decode(io.BytesIO(data), label, max_pixels)
    if isinstance(source, (str, os.PathLike)):
        return _from_path(source, max_pixels)
    if hasattr(source, "read"):
        return _from_file_object(source, max_pixels)
    raise ImageInputError(
        f"cannot use image source of type {type(source).__name__}: expected a path, bytes, "
        "a binary file object, a PIL image or a numpy array"
    )


def square_crop_resize(img: Image.Image, size: int) -> Image.Image:
    """Centre-crop the largest square of ``img``, then resize it to ``size`` x ``size``.

    Resizing is bicubic with ``reducing_gap=3.0`` (antialiased when shrinking). An image
    that is already ``size`` x ``size`` comes back as an unchanged copy.
    """
    size = _check_size_arg(size)
    if not isinstance(img, Image.Image):
        raise TypeError(f"square_crop_resize expects a PIL image, got {type(img).__name__}")
    width, height = img.size
    if width == 0 or height == 0:
        raise ImageInputError(f"cannot use image: it has zero size ({width}x{height} pixels)")
    if img.size == (size, size):
        return img.copy()
    side = min(width, height)
    left = (width - side) // 2
    top = (height - side) // 2
    # Cropping first keeps the intermediate no larger than side x side, whatever the
    # aspect ratio; resizing first would either distort or allocate a huge image.
    square = img.crop((left, top, left + side, top + side))
    if side == size:
        return square
    return square.resize((size, size), Image.BICUBIC, reducing_gap=3.0)


def load_image(
    source: Any, size: int = 256, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> torch.Tensor:
    """Load ``source`` as a float32 tensor of shape (3, size, size) with values in [0, 1].

    This is :func:`open_image`, then :func:`square_crop_resize`, then
    :func:`image_to_tensor`.
    """
    # Checked before opening so a bad argument fails fast, without decoding anything.
    size = _check_size_arg(size)
    img = open_image(source, max_pixels=max_pixels)
    return image_to_tensor(square_crop_resize(img, size))


def image_to_tensor(img: Image.Image) -> torch.Tensor:
    """Turn a PIL image into a float32 tensor (3, H, W) with values ``uint8 / 255``.

    A non-RGB image is first converted with the same policy as :func:`open_image`.
    """
    if not isinstance(img, Image.Image):
        raise TypeError(f"image_to_tensor expects a PIL image, got {type(img).__name__}")
    if img.mode != "RGB" or "transparency" in img.info:
        img = _to_rgb(img, "<PIL image>")
    array = np.array(img, dtype=np.uint8)  # a copy, so the tensor owns writable memory
    tensor = torch.from_numpy(array).to(torch.float32).div_(255.0)
    return rearrange(tensor, "h w c -> c h w").contiguous()


def tensor_to_image(t: torch.Tensor) -> Image.Image:
    """Turn a (3, H, W) or (1, 3, H, W) tensor in [0, 1] into an RGB PIL image.

    Values are clamped to [0, 1] (NaN becomes 0) and rounded to the nearest uint8.
    """
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"tensor_to_image expects a torch.Tensor, got {type(t).__name__}")
    if t.dim() == 4 and t.shape[0] == 1:
        t = rearrange(t, "1 c h w -> c h w")
    if t.dim() != 3 or t.shape[0] != 3:
        raise ValueError(
            f"tensor_to_image expects shape (3, H, W) or (1, 3, H, W), got {tuple(t.shape)}"
        )
    t = torch.nan_to_num(t.detach().to("cpu", torch.float32), nan=0.0)
    t = t.clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)
    array = rearrange(t, "c h w -> h w c").contiguous().numpy()
    return Image.fromarray(array)  # (H, W, 3) uint8 is RGB


# ------------------------------------------------------------------------ argument checks


def _check_size_arg(size: Any) -> int:
    # bool is an int subclass, but load_image(x, True) is surely a mistake.
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size <= 0:
        raise ValueError(f"size must be a positive integer (pixels per side), got {size!r}")
    return int(size)


def _check_max_pixels(max_pixels: Any) -> None:
    if (
        isinstance(max_pixels, bool)
        or not isinstance(max_pixels, numbers.Integral)
        or max_pixels <= 0
    ):
        raise ValueError(f"max_pixels must be a positive integer, got {max_pixels!r}")


def _check_dimensions(width: int, height: int, label: str, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise ImageInputError(
            f"cannot use image {label}: it has zero size ({width}x{height} pixels)"
        )
    pixels = width * height
    if pixels > max_pixels:
        raise ImageInputError(
            f"cannot use image {label}: it is too large, {width}x{height} = {pixels:,} "
            f"pixels, more than the limit of {max_pixels:,} pixels (max_pixels)"
        )


# ------------------------------------------------------------------------------ sources


def _from_path(path: str | os.PathLike, max_pixels: int) -> Image.Image:
    label = repr(os.fspath(path))
    try:
        info = os.stat(path)
    except FileNotFoundError as err:
        raise ImageInputError(f"cannot use image {label}: file not found") from err
    except PermissionError as err:
        raise ImageInputError(f"cannot use image {label}: permission denied") from err
    except (OSError, ValueError) as err:  # ValueError: e.g. a NUL byte in the path
        raise ImageInputError(f"cannot use image {label}: cannot access the path ({err})") from err
    if stat.S_ISDIR(info.st_mode):
        raise ImageInputError(f"cannot use image {label}: the path is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        # A FIFO or device could block forever or never end; only plain files are read.
        raise ImageInputError(f"cannot use image {label}: not a regular file")
    if info.st_size == 0:
        raise ImageInputError(f"cannot use image {label}: the file is empty (0 bytes)")
    try:
        handle = open(path, "rb")
    except OSError as err:
        raise ImageInputError(f"cannot use image {label}: cannot open the file ({err})") from err
    with handle:
        return _decode(handle, label, max_pixels)


def _from_file_object(fileobj: Any, max_pixels: int) -> Image.Image:
    name = getattr(fileobj, "name", None)
    label = repr(name) if isinstance(name, (str, bytes)) and name else "<file object>"
    if isinstance(fileobj, io.TextIOBase):
        raise ImageInputError(
            f"cannot use image {label}: the file object is open in text mode; open it with 'rb'"
        )
    try:
        # Peeking at one byte finds an empty stream without consuming a seekable one.
        position = fileobj.tell()
        first = fileobj.read(1)
        fileobj.seek(position)
    except (OSError, AttributeError, ValueError):
        # Not seekable (a pipe, a socket wrapper): hand PIL all of it in memory.
        try:
            data = fileobj.read()
        except Exception as err:
            raise ImageInputError(f"cannot use image {label}: cannot read it ({err})") from err
        if not isinstance(data, (bytes, bytearray)):
            raise ImageInputError(f"cannot use image {label}: the file object did not return bytes")
        first = data[:1]
        fileobj = io.BytesIO(data)
    if not isinstance(first, (bytes, bytearray)):
        raise ImageInputError(f"cannot use image {label}: the file object did not return bytes")
    if not first:
        raise ImageInputError(f"cannot use image {label}: the data is empty (0 bytes)")
    return _decode(fileobj, label, max_pixels)


def _from_pil(img: Image.Image, label: str, max_pixels: int) -> Image.Image:
    _check_dimensions(img.width, img.height, label, max_pixels)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        # A PIL image straight from Image.open has not decoded its pixels yet.
        _load_pixels(img, label)
        return _finish(img, label)


def _decode(fp: Any, label: str, max_pixels: int) -> Image.Image:
    """Decode an encoded image from an open binary file object."""
    with warnings.catch_warnings():
        # PIL only warns between MAX_IMAGE_PIXELS and twice that; refuse in both cases.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(fp)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise _pil_bomb_error(label, err) from err
        except UnidentifiedImageError as err:
            raise ImageInputError(
                f"cannot use image {label}: not an image, or an image format PIL cannot read"
            ) from err
        except MemoryError as err:
            raise ImageInputError(
                f"cannot use image {label}: not enough memory to open it"
            ) from err
        except Exception as err:
            raise ImageInputError(
                f"cannot use image {label}: the data is truncated or corrupt ({err})"
            ) from err
        with img:
            # Image.open has only parsed the header; check its size before decoding.
            _check_dimensions(img.width, img.height, label, max_pixels)
            _load_pixels(img, label)
            return _finish(img, label)


def _load_pixels(img: Image.Image, label: str) -> None:
    try:
        img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise _pil_bomb_error(label, err) from err
    except MemoryError as err:
        raise ImageInputError(f"cannot use image {label}: not enough memory to decode it") from err
    except Exception as err:  # OSError, SyntaxError, ValueError, EOFError, struct.error ...
        raise ImageInputError(
            f"cannot use image {label}: the data is truncated or corrupt ({err})"
        ) from err


def _pil_bomb_error(label: str, err: BaseException) -> ImageInputError:
    return ImageInputError(
        f"cannot use image {label}: it is too large, PIL refuses it as a possible "
        f"decompression bomb (limit Image.MAX_IMAGE_PIXELS = {Image.MAX_IMAGE_PIXELS:,}"
        f" pixels): {err}"
    )


def _finish(img: Image.Image, label: str) -> Image.Image:
    try:
        oriented = ImageOps.exif_transpose(img)
    except Exception:
        # A damaged EXIF block should not make otherwise good pixels unusable; the
        # image is then used as stored.
        oriented = img
    rgb = _to_rgb(oriented, label)
    if rgb is img:
        rgb = img.copy()
    rgb.info["frames"] = getattr(img, "n_frames", 1)  # what a caller may want to tell its user
    return rgb


def _from_numpy(array: np.ndarray, max_pixels: int) -> Image.Image:
    label = "<numpy array>"
    shape = array.shape
    if array.ndim == 3 and shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise ImageInputError(
            f"cannot use image {label}: unsupported numpy array shape {shape}; expected "
            "HxW (gray), HxWx3 (RGB) or HxWx4 (RGBA)"
        )
    height, width = array.shape[:2]
    _check_dimensions(width, height, label, max_pixels)
    array = _numpy_to_uint8(array, label)
    img = Image.fromarray(np.ascontiguousarray(array))  # uint8: L, RGB or RGBA by shape
    rgb = _to_rgb(img, label)
    rgb.info["frames"] = 1
    return rgb


def _numpy_to_uint8(array: np.ndarray, label: str) -> np.ndarray:
    dtype = array.dtype
    if dtype == np.uint8:
        return array
    if dtype == np.bool_:
        return array.astype(np.uint8) * np.uint8(255)
    if dtype == np.uint16:
        return _scale_to_uint8(array, 257.0)
    if np.issubdtype(dtype, np.floating):
        values = array.astype(np.float64)
        if not np.isfinite(values).all():
            raise ImageInputError(
                f"cannot use image {label}: the float array contains NaN or infinite values"
            )
        low, high = float(values.min()), float(values.max())
        tolerance = 1e-3  # rounding noise from upstream maths, not 0-255 data
        if low < -tolerance or high > 1.0 + tolerance:
            raise ImageInputError(
                f"cannot use image {label}: float array values must be in [0, 1], got "
                f"[{low:g}, {high:g}] (divide 0-255 data by 255)"
            )
        return np.rint(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)
    raise ImageInputError(
        f"cannot use image {label}: unsupported numpy array dtype {dtype}; expected "
        f"{_SUPPORTED_DTYPES_TEXT}"
    )


# ---------------------------------------------------------------------- mode conversion


def _to_rgb(img: Image.Image, label: str) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB, compositing transparency over white."""
    mode = img.mode
    try:
        if mode == "RGB" and "transparency" not in img.info:
            return img
        if mode in _ALPHA_MODES or (
            mode in ("P", "L", "RGB", "1") and "transparency" in img.info
        ):
            return _composite_on_white(img)
        if mode in _SIXTEEN_BIT_MODES:
            return _gray_to_rgb(_scale_to_uint8(np.asarray(img), 257.0))
        if mode == "I":
            return _gray_to_rgb(_int32_to_uint8(np.asarray(img)))
        if mode == "F":
            return _gray_to_rgb(_float_to_uint8(np.asarray(img)))
        # '1', 'L', 'P', 'CMYK', 'YCbCr', 'LAB', 'HSV', 'RGBX': PIL's own conversions.
        return img.convert("RGB")
    except ImageInputError:
        raise
    except Exception as err:
        raise ImageInputError(
            f"cannot use image {label}: cannot convert mode {mode!r} to RGB ({err})"
        ) from err


def _composite_on_white(img: Image.Image) -> Image.Image:
    if img.mode == "La":
        # PIL has no La -> RGBA conversion; undo the premultiplied luminance by hand.
        array = np.asarray(img).astype(np.float64)
        alpha = array[..., 1]
        lum = np.where(alpha > 0, array[..., 0] * 255.0 / np.maximum(alpha, 1.0), 0.0)
        la = np.stack([np.clip(np.rint(lum), 0, 255), alpha], axis=-1).astype(np.uint8)
        img = Image.fromarray(la)  # (H, W, 2) uint8 is LA
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, _WHITE + (255,))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _gray_to_rgb(gray: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(gray)).convert("RGB")


def _scale_to_uint8(array: np.ndarray, divisor: float) -> np.ndarray:
    values = array.astype(np.float64) / divisor
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _int32_to_uint8(array: np.ndarray) -> np.ndarray:
    values = np.clip(array.astype(np.int64), 0, None)
    high = int(values.max()) if values.size else 0
    if high <= 65535:
        # Most 'I' images are 16-bit data that PIL widened (PNG, TIFF); keep that scale.
        return _scale_to_uint8(values, 257.0)
    return _scale_to_uint8(values * 255.0, float(high))


def _float_to_uint8(array: np.ndarray) -> np.ndarray:
    values = np.nan_to_num(array.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if values.size and values.max() <= 1.0:
        return np.rint(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.rint(np.clip(values, 0.0, 255.0)).astype(np.uint8)
