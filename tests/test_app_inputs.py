"""Bad input, end to end: every kind of awkward file goes through the endpoints the page itself uses
(/explore for the Explore tab, /batch for the Batch tab) and the public /tokenize, on the running app
(conftest.app_server). Each one is either tokenized exactly as alit_core's loader reads it, or
refused with the loader's own message, naming the file as the user knows it; the server keeps
serving throughout.
"""

import io
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file

from benchmarks.app_latency import explore_inputs

SAMPLES = sorted((Path(__file__).resolve().parent.parent / "assets" / "samples").glob("*.png"))
ITERATIONS = 2  # enough to show the file was used; keeps the matrix fast
UNCHANGED = {"__type__": "update"}  # how gradio_client shows an output the handler left as it was


def _rgb(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _animated(path):
    frames = [Image.fromarray(_rgb(40, 40, seed)).convert("P") for seed in range(3)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)


def _palette_transparent(path):
    img = Image.fromarray(_rgb(48, 48)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    img.save(path, transparency=0)


def _rgba(path):
    a = np.zeros((48, 48, 4), dtype=np.uint8)
    a[8:40, 8:40] = (200, 30, 30, 255)  # an opaque square on a fully transparent background
    Image.fromarray(a, "RGBA").save(path)


# name -> (writer, expected): None when the file must be tokenized, else the loader's message (regex)
CASES = {
    "corrupt.png": (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4),
                    "not an image|truncated or corrupt"),
    "truncated.png": (lambda p: p.write_bytes(_png_bytes(Image.fromarray(_rgb(64, 64)))[:2000]),
                      "truncated or corrupt"),
    "empty.png": (lambda p: p.write_bytes(b""), r"empty \(0 bytes\)"),
    "notes.txt": (lambda p: p.write_text("not an image at all\n"), "not an image"),
    "drawing.svg": (lambda p: p.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>'),
                    "not an image"),
    # a few kB that decode to 64 megapixels: over the loader's 50 MP limit, refused from the header
    "bomb.png": (lambda p: Image.new("1", (8000, 8000)).save(p), "too large"),
    # 225 megapixels: beyond PIL's own decompression-bomb limit, which refuses it while opening
    "bomb_beyond_pil.png": (lambda p: Image.new("1", (15000, 15000)).save(p), "too large"),
    "animated.gif": (_animated, None),
    "gray16.png": (lambda p: Image.fromarray(np.linspace(0, 65535, 64 * 64, dtype=np.uint16).reshape(64, 64))
                   .save(p), None),
    "cmyk.jpg": (lambda p: Image.fromarray(_rgb(48, 64)).convert("CMYK").save(p, quality=90), None),
    "palette_transparent.png": (_palette_transparent, None),
    "rgba.png": (_rgba, None),
    "one_pixel.png": (lambda p: Image.new("RGB", (1, 1), (10, 200, 30)).save(p), None),
    "tall_1x4000.png": (lambda p: Image.fromarray(_rgb(4000, 1)).save(p), None),
    "png_named.jpg": (lambda p: Image.fromarray(_rgb(32, 32)).save(p, format="PNG"), None),
}
BAD = [n for n, (_, e) in CASES.items() if e]
GOOD = [n for n, (_, e) in CASES.items() if not e]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    out = {}
    for name, (write, _) in CASES.items():
        write(root / name)
        out[name] = root / name
    return out


@pytest.fixture(scope="module")
def client(app_server):
    return Client(app_server[0], verbose=False, download_files=False)  # results as URLs: nothing to fetch


@pytest.fixture(scope="module")
def library():
    """The bundled model in this process, to check the app reads each file as alit_core does."""
    from alit_core import load_image, load_tokenizer

    tok = load_tokenizer(device="cpu")
    return lambda path: [float(s.l1[0]) for s in tok.rollout(load_image(path, size=tok.resolution)[None],
                                                              max_iterations=ITERATIONS)]


def explore(client, path):
    """The Explore tab's Tokenize button: the streamed run, to its end (outputs: app.layout.EXPLORE_OUTPUTS)."""
    job = client.submit(*explore_inputs(path, ITERATIONS), api_name="/explore")
    return job.result()


def assert_clear_message(msg, name):
    msg = str(msg)
    assert re.search(CASES[name][1], msg), msg
    assert f"cannot use image '{name}'" in msg, msg  # the loader's message, naming the upload
    assert "/tmp/" not in msg and "gradio" not in msg.lower(), msg  # not the server's copy, not gradio's error


@pytest.mark.parametrize("name", BAD)
def test_bad_file_gets_the_loaders_message(client, files, name):
    status, metrics = explore(client, files[name])[:2]  # the page: the status line says it, nothing else changes
    assert "alit-status-error" in status and metrics == UNCHANGED
    assert_clear_message(status, name)
    with pytest.raises(Exception) as excinfo:  # the API raises it
        client.predict(handle_file(str(files[name])), 0.07, "deterministic", ITERATIONS, api_name="/tokenize")
    assert_clear_message(excinfo.value, name)


@pytest.mark.parametrize("name", GOOD)
def test_odd_file_is_tokenized_as_the_library_reads_it(client, files, library, name):
    status, metrics = explore(client, files[name])[:2]
    assert f"**Iteration {ITERATIONS - 1}**" in metrics and "alit-status-error" not in (status or "")
    summary = client.predict(handle_file(str(files[name])), 0.07, "deterministic", ITERATIONS,
                             api_name="/tokenize")
    assert [it["l1"] for it in summary["iterations"]] == pytest.approx(library(files[name]), abs=1e-5)
    expected_note = {"animated.gif": "only the first frame", "tall_1x4000.png": "only its centred 1x1 square",
                     "one_pixel.png": "scaled up"}.get(name)
    if expected_note:
        assert any(expected_note in n for n in summary["notes"]), summary["notes"]


def test_batch_uses_the_good_files_and_names_the_bad(client, files):
    status, table, _, _ = client.predict([handle_file(str(files[n])) for n in CASES], "bundled model",
                                         "L1 threshold", 0.07, 25, 128, "png_bpp", 0.05, api_name="/batch")
    assert sorted(row[0] for row in table["value"]["data"]) == sorted(GOOD)
    assert f"<div class='alit-status-warning'>⏭️ {len(BAD)} file(s) skipped" in status and "corrupt.png" in status
    status, table, _, _ = client.predict([handle_file(str(files[n])) for n in BAD], "bundled model", "L1 threshold",
                                         0.07, 25, 128, "png_bpp", 0.05, api_name="/batch")
    assert "None of the files could be used" in status and "cannot use image 'corrupt.png'" in status, status


def test_bad_files_do_not_disturb_other_users(app_server, files):
    url, _ = app_server

    def one(name):
        client = Client(url, verbose=False, download_files=False)
        return explore(client, files.get(name, name))[:2]  # (status, metrics)

    names = [str(SAMPLES[4]), *BAD, str(SAMPLES[0])]
    with ThreadPoolExecutor(4) as pool:
        results = dict(zip(names, pool.map(one, names)))
    for sample in (str(SAMPLES[4]), str(SAMPLES[0])):
        assert f"**Iteration {ITERATIONS - 1}**" in results[sample][1], results[sample]
    assert all("alit-status-error" in results[n][0] and results[n][1] == UNCHANGED for n in BAD)


def test_batch_zips_are_capped_and_a_damaged_zip_is_named(tmp_path):
    import zipfile

    from app.uploads import expand_uploads

    png = _png_bytes(Image.fromarray(_rgb(8, 8)))
    good = tmp_path / "photos.zip"
    with zipfile.ZipFile(good, "w") as z:
        z.writestr("huge.png", b"\0" * 4096, compress_type=zipfile.ZIP_DEFLATED)  # over the cap set below
        for i in range(5):
            z.writestr(f"dir/p{i}.png", png)
        z.writestr("readme.txt", "skipped: not an image name")
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(good.read_bytes()[:200] + b"\0" * 50 + good.read_bytes()[250:])  # the first entry's data
    loose = tmp_path / "loose.png"
    loose.write_bytes(png)

    pairs, skipped = expand_uploads([str(good), str(loose)], limit=4, max_entry_bytes=1000)
    assert [name for name, _ in pairs] == ["p0.png", "p1.png", "p2.png", "p3.png"]
    assert all(Path(path).read_bytes() == png for _, path in pairs)
    assert any("huge.png: too large unpacked" in s for s in skipped)
    assert any("2 image(s) beyond the first 4" in s for s in skipped)  # p4.png and loose.png

    # every ending the library reads as an image counts inside a zip too (a .jfif is a JPEG)
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("camera.jfif", png)
        z.writestr("scan.ppm", png)
    assert [name for name, _ in expand_uploads([str(other)])[0]] == ["camera.jfif", "scan.ppm"]

    pairs, skipped = expand_uploads([str(damaged), str(loose)])
    assert ("loose.png", str(loose)) in pairs
    assert any(s.startswith("damaged.zip: cannot unpack this zip") for s in skipped), skipped
