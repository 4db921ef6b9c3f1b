"""Tests for alit_train.scenes on tiny generated photos and stamps (no downloaded data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from alit_train import scenes as S
from alit_train import synthetic

BLUE = (0, 0, 255)


def _save(img: Image.Image, path: Path, role: str, split: str) -> dict:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return {
        "path": path.name,
        "abs_path": str(path),
        "role": role,
        "split": split,
        "width": img.width,
        "height": img.height,
        "package": "fake",
    }


def _red_disk(size: int = 80) -> Image.Image:
    """A solid red disk whose alpha has an anti-aliased edge (drawn 4x, downsampled)."""
    big = Image.new("L", (size * 4, size * 4), 0)
    ImageDraw.Draw(big).ellipse((8, 8, size * 4 - 9, size * 4 - 9), fill=255)
    alpha = big.resize((size, size), Image.Resampling.BOX)
    im = Image.new("RGBA", (size, size), (255, 0, 0, 0))
    im.putalpha(alpha)
    return im


def _noise(seed: int, w: int, h: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("scenes")


@pytest.fixture(scope="module")
def blue_red(folder) -> S.PhotoBank:
    """Blue backgrounds and a single red-disk object."""
    entries = [
        _save(Image.new("RGB", (300, 200), BLUE), folder / "blue_train.png", "background", "train"),
        _save(Image.new("RGB", (200, 260), BLUE), folder / "blue_val.png", "background", "val"),
        _save(_red_disk(), folder / "disk.png", "object", "train"),
    ]
    return S.PhotoBank(entries)


@pytest.fixture(scope="module")
def squares(folder) -> S.PhotoBank:
    """Blue background and an opaque green square (its footprint is exactly its box)."""
    entries = [
        _save(Image.new("RGB", (300, 200), BLUE), folder / "blue2.png", "background", "train"),
        _save(Image.new("RGBA", (40, 40), (0, 255, 0, 255)), folder / "sq.png", "object", "train"),
    ]
    return S.PhotoBank(entries)


@pytest.fixture(scope="module")
def mixed(folder) -> S.PhotoBank:
    entries = [
        _save(_noise(1, 320, 240), folder / "n1.png", "background", "train"),
        _save(_noise(2, 240, 320), folder / "n2.png", "background", "train"),
        _save(_noise(3, 256, 256), folder / "n3.png", "background", "val"),
        _save(_red_disk(64), folder / "d1.png", "object", "train"),
        _save(_red_disk(96).transpose(Image.Transpose.ROTATE_90), folder / "d2.png", "object", "train"),
        _save(_red_disk(50), folder / "d3.png", "object", "val"),
        _save(_red_disk(60), folder / "c1.png", "clipart", "train"),
    ]
    return S.PhotoBank(entries)


def test_scene_is_deterministic(mixed):
    a = S.make_scene(mixed, np.random.default_rng(123))
    b = S.make_scene(mixed, np.random.default_rng(123))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.masks, b.masks)
    assert a.objects == b.objects and a.boxes == b.boxes
    c = S.make_scene(mixed, np.random.default_rng(124))
    assert not np.array_equal(a.image, c.image)
    assert a.image.dtype == np.uint8 and a.image.shape == (128, 128, 3)
    assert a.masks.dtype == np.int16 and a.masks.shape == (128, 128)


def test_entry_list_and_bank_agree(mixed):
    a = S.make_scene(mixed, np.random.default_rng(5), size=64)
    b = S.make_scene(list(mixed.entries), np.random.default_rng(5), size=64)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.masks, b.masks)


def test_mask_matches_pasted_alpha(blue_red):
    for seed in range(6):
        s = S.make_scene(blue_red, np.random.default_rng(seed), k_objects=(1, 1))
        assert s.num_objects == 1
        img = s.image.astype(int)
        red = img[..., 0] > img[..., 2]
        assert np.array_equal(s.masks > 0, red), seed
        assert set(np.unique(s.masks)) == {0, 1}
        # the background is untouched outside the stamp's box
        x0, y0, x1, y1 = s.boxes[0]
        outside = np.ones(s.masks.shape, bool)
        outside[y0:y1, x0:x1] = False
        assert (s.image[outside] == BLUE).all()


def test_later_objects_occlude_earlier(squares):
    checked = 0
    for seed in range(200):
        s = S.make_scene(squares, np.random.default_rng(seed), k_objects=(2, 2), min_visible=0.0)
        (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = s.boxes
        overlap = min(ax1, bx1) > max(ax0, bx0) and min(ay1, by1) > max(ay0, by0)
        if not overlap:
            continue
        assert (s.masks[by0:by1, bx0:bx1] == 2).all()
        first = np.zeros(s.masks.shape, bool)
        first[ay0:ay1, ax0:ax1] = True
        first[by0:by1, bx0:bx1] = False
        assert (s.masks[first] == 1).all()
        assert (s.masks[~first & (s.masks != 2)] == 0).all()
        checked += 1
        if checked >= 5:
            break
    assert checked >= 1


def test_min_visible_keeps_earlier_objects(squares):
    for seed in range(20):
        s = S.make_scene(squares, np.random.default_rng(seed), k_objects=(3, 3))
        assert s.num_objects == 3
        assert set(np.unique(s.masks)) == {0, 1, 2, 3}


def test_k0_gives_empty_mask_and_plain_crop(mixed):
    s = S.make_scene(mixed, np.random.default_rng(9), k_objects=0)
    assert s.num_objects == 0 and s.objects == [] and not s.masks.any()
    crop = S.photo_crop(mixed, np.random.default_rng(9), 128, split="train")
    assert np.array_equal(s.image, crop)


def test_objects_fully_inside(mixed):
    for seed in range(30):
        s = S.make_scene(mixed, np.random.default_rng(seed), size=96, k_objects=(0, 4))
        assert s.num_objects == len(s.boxes) == len(s.objects)
        assert s.masks.max() == s.num_objects or s.num_objects == 0 or s.masks.max() > 0
        inside = np.zeros(s.masks.shape, bool)
        for x0, y0, x1, y1 in s.boxes:
            assert 0 <= x0 < x1 <= 96 and 0 <= y0 < y1 <= 96
            longer = max(x1 - x0, y1 - y0)
            assert 0.25 * 96 - 1 <= longer <= 0.6 * 96 + 1
            inside[y0:y1, x0:x1] = True
        assert not s.masks[~inside].any()


def test_split_is_respected(mixed):
    for seed in range(10):
        s = S.make_scene(mixed, np.random.default_rng(seed), split="val", k_objects=(1, 2))
        assert s.background == "n3.png"
        assert set(s.objects) <= {"d3.png"}
    with pytest.raises(ValueError):
        S.photo_crop(mixed, np.random.default_rng(0), 64, split="test")


@pytest.mark.parametrize("kind", synthetic.SIMPLE_KINDS)
def test_simple_images(kind):
    a = synthetic.simple_image(np.random.default_rng(1), 64, kind)
    b = synthetic.simple_image(np.random.default_rng(1), 64, kind)
    c = synthetic.simple_image(np.random.default_rng(2), 64, kind)
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    if kind == "flat":
        assert (a == a[0, 0]).all()


@pytest.mark.parametrize("kind", synthetic.OOD_KINDS)
def test_ood_images(kind, mixed):
    a = synthetic.ood_image(np.random.default_rng(1), 64, kind, index=mixed)
    b = synthetic.ood_image(np.random.default_rng(1), 64, kind, index=mixed)
    c = synthetic.ood_image(np.random.default_rng(2), 64, kind, index=mixed)
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert len(np.unique(a.reshape(-1, 3), axis=0)) > 1


@pytest.mark.parametrize("size", [32, 64, 128, 256])
def test_synthetic_ood_kinds_draw_at_any_seed_and_size(size):
    for seed in range(40):  # layouts vary with the seed: none may run off the canvas
        for kind in ("screenshot", "texture"):
            assert synthetic.ood_image(np.random.default_rng(seed), size, kind).shape == (size, size, 3)


def test_bad_kinds_and_missing_index():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        synthetic.simple_image(rng, 32, "stripes")
    with pytest.raises(ValueError):
        synthetic.ood_image(rng, 32, "stripes")
    with pytest.raises(ValueError):
        synthetic.ood_image(rng, 32, "clipart")


def test_photobank_caches_and_downscales(folder):
    entries = [
        _save(_noise(7, 900, 700), folder / "big.png", "background", "train"),
        _save(_red_disk(300), folder / "bigdisk.png", "object", "train"),
        _save(_red_disk(20), folder / "tiny.png", "object", "train"),
    ]
    bank = S.PhotoBank(entries)
    bg = bank.image(entries[0])
    assert bank.image(entries[0]) is bg
    assert min(bg.size) == 512 and bg.size == (658, 512)
    st = bank.image(entries[1])
    assert st.mode == "RGBA" and min(st.size) <= 256
    assert np.asarray(st)[..., 3].max() == 255
    assert [e["path"] for e in bank.select("object", "train")] == ["bigdisk.png"]


def test_letterbox_bars_are_trimmed(folder):
    arr = np.asarray(_noise(11, 300, 200)).copy()
    arr[:20] = 0
    arr[-20:] = 0
    e = _save(Image.fromarray(arr), folder / "letterbox.png", "background", "train")
    im = S.PhotoBank([e]).image(e)
    assert im.size[0] == 300 and 160 <= im.size[1] <= 162
    assert np.asarray(im)[0].max() > 40


def test_mask_overlay_shape(mixed):
    s = S.make_scene(mixed, np.random.default_rng(3), size=64, k_objects=(2, 2))
    ov = S.mask_overlay(s)
    assert ov.shape == s.image.shape and ov.dtype == np.uint8
