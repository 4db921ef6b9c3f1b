"""Tests for alit_core.files.image_io: every kind of bad input, every mode, the resize policy."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from alit_core.errors import ImageInputError
from alit_core.files.image_io import (
    image_to_tensor,
    load_image,
    open_image,
    square_crop_resize,
    tensor_to_image,
)

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)


def _noise(width: int, height: int, seed: int = 0) -> Image.Image:
    # Noise does not compress, so a file cut in half really is missing pixel data.
    rng = np.random.RandomState(seed)
    return Image.fromarray(rng.randint(0, 256, (height, width, 3), dtype=np.uint8))


def _encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def _pixel(t: torch.Tensor, x: int, y: int) -> tuple[float, ...]:
    return tuple(float(v) for v in t[:, y, x])


# ----------------------------------------------------------------------------- bad input


def test_missing_file(tmp_path):
    path = tmp_path / "nope.png"
    with pytest.raises(ImageInputError, match=r"file not found") as info:
        open_image(path)
    assert "nope.png" in str(info.value)
    assert isinstance(info.value.__cause__, FileNotFoundError)


def test_directory(tmp_path):
    with pytest.raises(ImageInputError, match=r"is a directory") as info:
        load_image(str(tmp_path))
    assert str(tmp_path) in str(info.value)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageInputError, match=r"empty \(0 bytes\)") as info:
        open_image(path)
    assert "empty.jpg" in str(info.value)


def test_empty_bytes_and_stream():
    with pytest.raises(ImageInputError, match=r"empty \(0 bytes\)"):
        open_image(b"")
    with pytest.raises(ImageInputError, match=r"empty \(0 bytes\)"):
        open_image(io.BytesIO())


def test_text_file_renamed_png(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not a picture\n" * 20)
    with pytest.raises(ImageInputError, match=r"not an image") as info:
        open_image(path)
    assert "notes.png" in str(info.value)
    assert info.value.__cause__ is not None


def test_random_bytes():
    data = np.random.RandomState(1).randint(0, 256, 4096, dtype=np.uint8).tobytes()
    with pytest.raises(ImageInputError, match=r"not an image"):
        open_image(data)
    with pytest.raises(ImageInputError, match=r"not an image"):
        open_image(io.BytesIO(data))


@pytest.mark.parametrize("fmt, suffix", [("PNG", ".png"), ("JPEG", ".jpg")])
def test_truncated_file(tmp_path, fmt, suffix):
    data = _encode(_noise(64, 64), fmt)
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageInputError, match=r"truncated or corrupt") as info:
        load_image(path)
    assert f"cut{suffix}" in str(info.value)
    assert isinstance(info.value.__cause__, OSError)
    # The module must not have switched PIL into "fill truncated images with grey" mode.
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_too_many_pixels_refused_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.new("L", (3000, 3000), 7).save(path)

    def no_decoding(self, *args, **kwargs):
        raise AssertionError("pixels were decoded before the size check")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(ImageInputError, match=r"too large") as info:
        open_image(path, max_pixels=1_000_000)
    message = str(info.value)
    assert "3000x3000" in message and "9,000,000" in message and "1,000,000" in message
    assert "big.png" in message


def test_pixel_limit_also_applies_to_arrays_and_pil_images():
    with pytest.raises(ImageInputError, match=r"too large"):
        open_image(np.zeros((20, 20), np.uint8), max_pixels=100)
    with pytest.raises(ImageInputError, match=r"too large"):
        open_image(Image.new("RGB", (20, 20)), max_pixels=100)


@pytest.mark.parametrize("side", [40, 50])  # 40: PIL warns; 50 (> 2x limit): PIL raises
def test_pil_decompression_bomb_becomes_image_input_error(monkeypatch, side):
    data = _encode(Image.new("RGB", (side, side), RED), "PNG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may leak out as a warning either
        with pytest.raises(ImageInputError, match=r"decompression bomb") as info:
            open_image(data)
    pil_errors = (Image.DecompressionBombError, Image.DecompressionBombWarning)
    assert isinstance(info.value.__cause__, pil_errors)


@pytest.mark.parametrize("shape", [(0, 5), (5, 0, 3), (0, 0, 4)])
def test_zero_sized_numpy_array(shape):
    with pytest.raises(ImageInputError, match=r"zero size"):
        open_image(np.zeros(shape, np.uint8))


def test_zero_sized_pil_image():
    with pytest.raises(ImageInputError, match=r"zero size \(0x5 pixels\)"):
        load_image(Image.new("RGB", (0, 5)))


@pytest.mark.parametrize("dtype", [np.complex64, np.int64, np.int8, object])
def test_bad_numpy_dtype(dtype):
    with pytest.raises(ImageInputError, match=r"unsupported numpy array dtype"):
        open_image(np.zeros((4, 4, 3), dtype=dtype))


@pytest.mark.parametrize("shape", [(4,), (4, 4, 2), (4, 4, 5), (1, 4, 4, 3)])
def test_bad_numpy_shape(shape):
    with pytest.raises(ImageInputError, match=r"unsupported numpy array shape"):
        open_image(np.zeros(shape, np.uint8))


def test_float_array_out_of_range_or_nan():
    with pytest.raises(ImageInputError, match=r"must be in \[0, 1\]"):
        open_image(np.full((4, 4), 200.0))
    with pytest.raises(ImageInputError, match=r"NaN or infinite"):
        open_image(np.full((4, 4), np.nan, np.float32))


def test_unsupported_source_type_and_text_stream():
    with pytest.raises(ImageInputError, match=r"type int"):
        open_image(42)
    with pytest.raises(ImageInputError, match=r"text mode"):
        open_image(io.StringIO("hello"))


@pytest.mark.parametrize("size", [0, -3, 2.5, True, "256"])
def test_bad_size_argument(size):
    with pytest.raises(ValueError, match=r"size must be a positive integer"):
        load_image(np.zeros((4, 4), np.uint8), size)


# ------------------------------------------------------------------------- orientation


def test_exif_orientation_6_rotates(tmp_path):
    # 64 wide x 32 high, top-left 16x16 block red, rest blue.
    img = Image.new("RGB", (64, 32), BLUE)
    img.paste(Image.new("RGB", (16, 16), RED), (0, 0))
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "phone.jpg"
    img.save(path, quality=95, exif=exif.tobytes())

    opened = open_image(path)
    assert opened.size == (32, 64)  # width and height swapped
    t = image_to_tensor(opened)
    # Rotating clockwise moves the top-left corner to the top-right.
    top_right, top_left = _pixel(t, 28, 4), _pixel(t, 4, 4)
    assert top_right[0] > 0.9 and top_right[2] < 0.1
    assert top_left[2] > 0.9 and top_left[0] < 0.1


# ------------------------------------------------------------------------ mode handling


def test_rgba_transparent_becomes_white_and_half_alpha_blends():
    img = Image.new("RGBA", (2, 1))
    img.putpixel((0, 0), (0, 0, 0, 0))
    img.putpixel((1, 0), (255, 0, 0, 128))
    t = image_to_tensor(open_image(img))
    assert _pixel(t, 0, 0) == (1.0, 1.0, 1.0)
    assert _pixel(t, 1, 0) == pytest.approx((1.0, 0.5, 0.5), abs=0.01)


def test_rgba_png_file_composited_over_white(tmp_path):
    path = tmp_path / "alpha.png"
    Image.new("RGBA", (8, 8), (10, 20, 30, 0)).save(path)
    t = load_image(path, 8)
    assert torch.equal(t, torch.ones(3, 8, 8))


def test_la_mode():
    img = Image.new("LA", (2, 1))
    img.putpixel((0, 0), (0, 0))  # black but fully transparent -> white
    img.putpixel((1, 0), (0, 255))  # opaque black
    t = image_to_tensor(open_image(img))
    assert _pixel(t, 0, 0) == (1.0, 1.0, 1.0)
    assert _pixel(t, 1, 0) == (0.0, 0.0, 0.0)


def test_palette_with_transparency(tmp_path):
    img = Image.new("P", (2, 1))
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * (256 * 3 - 6))
    img.putpixel((0, 0), 0)
    img.putpixel((1, 0), 1)
    img.info["transparency"] = 0
    t = image_to_tensor(open_image(img))
    assert _pixel(t, 0, 0) == (1.0, 1.0, 1.0)
    assert _pixel(t, 1, 0) == (1.0, 0.0, 0.0)
    # The same through a real PNG file with a tRNS chunk.
    path = tmp_path / "pal.png"
    img.save(path, transparency=0)
    assert torch.equal(image_to_tensor(open_image(path)), t)


def test_palette_without_transparency():
    img = Image.new("RGB", (4, 4), GREEN).convert("P")
    assert open_image(img).getpixel((0, 0)) == GREEN


def test_16_bit_grayscale(tmp_path):
    array = np.array([[65535, 32896, 0]], dtype=np.uint16)
    img = Image.fromarray(array)
    assert img.mode == "I;16"
    t = image_to_tensor(open_image(img))
    assert _pixel(t, 0, 0) == (1.0, 1.0, 1.0)
    assert _pixel(t, 1, 0) == pytest.approx((0.502, 0.502, 0.502), abs=0.001)
    assert _pixel(t, 2, 0) == (0.0, 0.0, 0.0)
    # A 16-bit PNG comes back from PIL as mode 'I' (or 'I;16'); same values either way.
    path = tmp_path / "gray16.png"
    img.save(path)
    assert torch.equal(image_to_tensor(open_image(path)), t)
    # And as a numpy uint16 array.
    assert torch.equal(image_to_tensor(open_image(array)), t)


def test_32_bit_integer_scaled_by_max_when_beyond_16_bits():
    img = Image.fromarray(np.array([[1_000_000, 500_000, -5]], dtype=np.int32))
    t = image_to_tensor(open_image(img))
    assert _pixel(t, 0, 0)[0] == 1.0
    assert _pixel(t, 1, 0)[0] == pytest.approx(0.5, abs=0.003)
    assert _pixel(t, 2, 0)[0] == 0.0


def test_cmyk_converts():
    img = Image.new("CMYK", (4, 4), (0, 255, 255, 0))  # no cyan, full magenta+yellow = red
    out = open_image(img)
    assert out.mode == "RGB"
    assert out.getpixel((0, 0)) == RED


@pytest.mark.parametrize(
    "mode, value, expected",
    [("YCbCr", (255, 128, 128), (255, 255, 255)), ("HSV", (0, 255, 255), RED)],
)
def test_other_colour_spaces(mode, value, expected):
    out = open_image(Image.new(mode, (2, 2), value))
    assert out.mode == "RGB"
    assert out.getpixel((0, 0)) == pytest.approx(expected, abs=2)


def test_lab_converts():
    out = open_image(Image.new("LAB", (2, 2), (255, 128, 128)))  # L=100, a=b=0: white
    assert out.mode == "RGB"
    assert all(v >= 250 for v in out.getpixel((0, 0)))


def test_grayscale_l_gives_equal_channels():
    img = Image.fromarray(np.arange(16, dtype=np.uint8).reshape(4, 4) * 16)
    t = image_to_tensor(open_image(img))
    assert torch.equal(t[0], t[1]) and torch.equal(t[1], t[2])
    assert float(t[0, 3, 3]) == pytest.approx(240 / 255)


def test_one_bit_mode():
    img = Image.new("1", (2, 1), 0)
    img.putpixel((1, 0), 1)
    t = image_to_tensor(open_image(img))
    assert _pixel(t, 0, 0) == (0.0, 0.0, 0.0)
    assert _pixel(t, 1, 0) == (1.0, 1.0, 1.0)


def test_float_f_mode():
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0, 1.0]], np.float32))
    t = image_to_tensor(open_image(unit))
    assert [_pixel(t, x, 0)[0] for x in range(4)] == pytest.approx([0.0, 128 / 255, 1.0, 1.0])
    wide = Image.fromarray(np.array([[-3.0, 100.0, 300.0]], np.float32))
    t = image_to_tensor(open_image(wide))
    assert [_pixel(t, x, 0)[0] for x in range(3)] == pytest.approx([0.0, 100 / 255, 1.0])


def test_animated_gif_uses_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), colour) for colour in (RED, GREEN, BLUE)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    with Image.open(path) as check:
        assert check.n_frames == 3
    opened = open_image(path)
    assert opened.getpixel((4, 4)) == RED
    assert opened.info["frames"] == 3  # what the file had, for a caller to tell its user
    frames[0].save(tmp_path / "still.png")
    assert open_image(tmp_path / "still.png").info["frames"] == 1
    assert open_image(np.zeros((2, 2, 3), np.uint8)).info["frames"] == 1


def test_numpy_sources():
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (0, 0, 255, 255)
    assert open_image(rgba).getpixel((0, 0)) == BLUE
    assert open_image(rgba).getpixel((1, 1)) == (255, 255, 255)  # transparent -> white
    assert open_image(np.ones((2, 2), bool)).getpixel((0, 0)) == (255, 255, 255)
    gray = open_image(np.full((2, 2, 3), 0.5, np.float32))
    assert gray.getpixel((0, 0)) == (128, 128, 128)
    strided = np.zeros((4, 4, 3), np.uint8)[::2, ::2]  # non-contiguous view
    assert open_image(strided).size == (2, 2)


# --------------------------------------------------------------------- resize & tensors


def test_crop_then_resize_keeps_only_the_centre():
    img = Image.new("RGB", (400, 200), RED)
    img.paste(Image.new("RGB", (200, 200), BLUE), (100, 0))
    t = load_image(img, 64)
    assert t.shape == (3, 64, 64)
    assert float(t[0].max()) < 0.02 and float(t[2].min()) > 0.98


def test_square_crop_resize_policy(monkeypatch):
    img = _noise(300, 100)
    seen = []
    original_resize = Image.Image.resize

    def spy(self, *args, **kwargs):
        seen.append((self.size, args, kwargs))
        return original_resize(self, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "resize", spy)
    out = square_crop_resize(img, 50)
    assert out.size == (50, 50)
    assert seen == [((100, 100), ((50, 50), Image.BICUBIC), {"reducing_gap": 3.0})]
    # Already the target size: an equal copy, not a resampled image.
    same = _noise(32, 32)
    copy = square_crop_resize(same, 32)
    assert copy is not same and np.array_equal(np.asarray(copy), np.asarray(same))
    # Square crop of the right side needs no resampling at all.
    cropped = square_crop_resize(img, 100)
    assert np.array_equal(np.asarray(cropped), np.asarray(img)[:, 100:200])


def test_output_shape_dtype_range():
    t = load_image(_noise(97, 61), 48)
    assert t.shape == (3, 48, 48)
    assert t.dtype == torch.float32
    assert float(t.min()) >= 0.0 and float(t.max()) <= 1.0
    # Values are exactly uint8 / 255.
    assert torch.equal(torch.round(t * 255) / 255, t)


def test_round_trip_is_exact():
    img = _noise(37, 23, seed=5)
    back = tensor_to_image(image_to_tensor(img))
    assert back.mode == "RGB" and back.size == img.size
    assert np.array_equal(np.asarray(back), np.asarray(img))
    batched = tensor_to_image(image_to_tensor(img).unsqueeze(0))
    assert np.array_equal(np.asarray(batched), np.asarray(img))


def test_tensor_to_image_clamps_and_checks_shape():
    t = torch.tensor([-1.0, 0.5, 2.0]).view(3, 1, 1)
    assert tensor_to_image(t).getpixel((0, 0)) == (0, 128, 255)
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        tensor_to_image(torch.zeros(4, 2, 2))
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        tensor_to_image(torch.zeros(2, 3, 2, 2))


def test_bytes_and_file_like_sources(tmp_path):
    img = _noise(16, 16, seed=2)
    data = _encode(img, "PNG")
    expected = np.asarray(img)
    assert np.array_equal(np.asarray(open_image(data)), expected)
    assert np.array_equal(np.asarray(open_image(bytearray(data))), expected)
    stream = io.BytesIO(data)
    assert np.array_equal(np.asarray(open_image(stream)), expected)
    assert not stream.closed  # the caller's stream is left for the caller to close
    path = tmp_path / "img.png"
    path.write_bytes(data)
    with open(path, "rb") as handle:
        assert np.array_equal(np.asarray(open_image(handle)), expected)
    assert np.array_equal(np.asarray(open_image(str(path))), expected)
    assert torch.equal(load_image(data, 16), image_to_tensor(img))


def test_returned_image_is_independent_of_the_input():
    img = Image.new("RGB", (4, 4), RED)
    out = open_image(img)
    out.putpixel((0, 0), BLUE)
    assert img.getpixel((0, 0)) == RED


def test_one_by_one_image():
    t = load_image(Image.new("RGB", (1, 1), GREEN))
    assert t.shape == (3, 256, 256)
    assert torch.equal(t[1], torch.ones(256, 256)) and float(t[0].max()) == 0.0


def test_very_elongated_image(monkeypatch):
    img = Image.new("RGB", (10000, 1), RED)
    img.putpixel((4999, 0), BLUE)  # (10000 - 1) // 2: the centre column
    seen = []
    original_resize = Image.Image.resize

    def spy(self, *args, **kwargs):
        seen.append(self.size)
        return original_resize(self, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "resize", spy)
    t = load_image(img)
    assert t.shape == (3, 256, 256)
    # Only the 1x1 centre square was ever resampled; nothing 10000 wide was upscaled.
    assert seen == [(1, 1)]
    assert torch.equal(t[2], torch.ones(256, 256))
