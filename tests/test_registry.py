"""Tests of alit_core.files.registry and .download: the checkpoint table, the cache paths and the downloader.

No internet: every download goes to a small HTTP server on 127.0.0.1 started per test.
"""

from __future__ import annotations

import dataclasses
import http.server
import random
import re
import socket
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from alit_core.errors import CheckpointError, DownloadError
from alit_core.files import download as downloads
from alit_core.files.download import direct_url, download, partial_path
from alit_core.files.registry import (
    KARL_CHECKPOINTS,
    OFFICIAL_CHECKPOINTS,
    cached_path,
    default_cache_dir,
    fetch_official,
    get_official,
)

DATA = random.Random(1234).randbytes(300 * 1024)
RESUME_AT = 100 * 1024
CHUNK = 16 * 1024


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves DATA at any path; how it misbehaves is set by ``server.mode``."""

    timeout = 5  # seconds; bounds every socket read/write of the handler

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        server = self.server
        range_header = self.headers.get("Range")
        server.range_headers.append(range_header)
        mode = server.mode

        if mode == "404":
            self.send_error(404, "Not Found")
            return
        if mode == "html":
            body = b"<html><body>Dropbox preview page</body></html>"
            self._send(200, body, content_type="text/html; charset=utf-8")
            return
        if mode == "short":  # announce everything, send half, hang up
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(DATA)))
            self.end_headers()
            self.wfile.write(DATA[: len(DATA) // 2])
            self.wfile.flush()
            self.close_connection = True
            return

        match = re.fullmatch(r"bytes=(\d+)-", range_header or "")
        if mode == "range" and match:
            start = int(match.group(1))
            if start >= len(DATA):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(DATA)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self._send(206, DATA[start:],
                       extra={"Content-Range": f"bytes {start}-{len(DATA) - 1}/{len(DATA)}"})
            return
        self._send(200, DATA)  # "ignore_range", or no Range asked

    def _send(self, status, body, *, content_type="application/octet-stream", extra=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def serve():
    """``serve(mode) -> (base_url, server)``; every server started is shut down afterwards."""
    started = []

    def start(mode="range"):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.mode = mode
        server.range_headers = []
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                  daemon=True)
        thread.start()
        started.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}/ckpt.pth", server

    yield start
    for server, thread in started:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("urlopen must not be called")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


# ---------------------------------------------------------------------------- downloads


def test_full_download_identical_bytes_and_progress(serve, tmp_path):
    url, server = serve("range")
    dest = tmp_path / "sub" / "ckpt.pth"
    calls = []
    out = download(url, dest, progress=lambda d, t: calls.append((d, t)), timeout=5,
                   chunk_size=CHUNK)
    assert out == dest
    assert dest.read_bytes() == DATA
    assert not partial_path(dest).exists()
    assert server.range_headers == [None]
    assert calls[-1] == (len(DATA), len(DATA))
    assert all(t == len(DATA) for _, t in calls)
    dones = [d for d, _ in calls]
    assert dones == sorted(dones) and len(calls) == -(-len(DATA) // CHUNK)


def test_resume_sends_range_and_gives_identical_file(serve, tmp_path):
    url, server = serve("range")
    dest = tmp_path / "ckpt.pth"
    partial_path(dest).write_bytes(DATA[:RESUME_AT])
    calls = []
    download(url, dest, progress=lambda d, t: calls.append((d, t)), timeout=5,
             chunk_size=CHUNK, expected_size=len(DATA))
    assert server.range_headers == [f"bytes={RESUME_AT}-"]
    assert dest.read_bytes() == DATA
    assert not partial_path(dest).exists()
    assert calls[0][0] > RESUME_AT  # counts the bytes already there
    assert calls[-1] == (len(DATA), len(DATA))


def test_server_ignoring_range_restarts_from_zero(serve, tmp_path):
    url, server = serve("ignore_range")
    dest = tmp_path / "ckpt.pth"
    partial_path(dest).write_bytes(b"\xff" * RESUME_AT)  # would corrupt the file if appended to
    download(url, dest, progress=lambda d, t: None, timeout=5)
    assert server.range_headers == [f"bytes={RESUME_AT}-"]
    assert dest.read_bytes() == DATA


def test_part_file_too_long_gets_refetched(serve, tmp_path):
    """A stale .part as long as the file: the server answers 416 and we start over."""
    url, server = serve("range")
    dest = tmp_path / "ckpt.pth"
    partial_path(dest).write_bytes(b"\x00" * (len(DATA) + 10))
    download(url, dest, progress=lambda d, t: None, timeout=5)
    assert server.range_headers == [f"bytes={len(DATA) + 10}-", None]
    assert dest.read_bytes() == DATA


def test_complete_part_with_known_size_is_finalized_offline(tmp_path, no_network):
    dest = tmp_path / "ckpt.pth"
    partial_path(dest).write_bytes(DATA)
    download("http://127.0.0.1:9/x", dest, expected_size=len(DATA))
    assert dest.read_bytes() == DATA


def test_http_404_is_download_error_with_hint(serve, tmp_path):
    url, _ = serve("404")
    dest = tmp_path / "ckpt.pth"
    with pytest.raises(DownloadError) as info:
        download(url, dest, progress=lambda d, t: None, timeout=5)
    msg = str(info.value)
    assert "404" in msg and "download failed" in msg
    assert "by hand" in msg and url in msg and str(dest) in msg
    assert not dest.exists()
    assert isinstance(info.value, CheckpointError)


def test_connection_refused_is_download_error(tmp_path):
    with socket.socket() as sock:  # find a port, then free it so nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dest = tmp_path / "ckpt.pth"
    with pytest.raises(DownloadError, match="by hand") as info:
        download(f"http://127.0.0.1:{port}/ckpt.pth", dest, progress=lambda d, t: None,
                 timeout=5)
    assert str(dest) in str(info.value)
    assert not dest.exists()


def test_size_mismatch_leaves_no_file(serve, tmp_path):
    url, _ = serve("range")
    dest = tmp_path / "ckpt.pth"
    with pytest.raises(DownloadError, match="expected"):
        download(url, dest, progress=lambda d, t: None, timeout=5, expected_size=len(DATA) + 1)
    assert not dest.exists()
    assert not partial_path(dest).exists()


def test_short_body_keeps_part_and_can_resume(serve, tmp_path):
    short_url, _ = serve("short")
    dest = tmp_path / "ckpt.pth"
    with pytest.raises(DownloadError, match="by hand"):
        download(short_url, dest, progress=lambda d, t: None, timeout=5)
    assert not dest.exists()
    assert partial_path(dest).read_bytes() == DATA[: len(DATA) // 2]

    good_url, server = serve("range")
    download(good_url, dest, progress=lambda d, t: None, timeout=5)
    assert server.range_headers == [f"bytes={len(DATA) // 2}-"]
    assert dest.read_bytes() == DATA


def test_web_page_instead_of_file_is_rejected(serve, tmp_path):
    url, _ = serve("html")
    dest = tmp_path / "ckpt.pth"
    with pytest.raises(DownloadError, match="web page"):
        download(url, dest, progress=lambda d, t: None, timeout=5)
    assert not dest.exists()


def test_default_progress_draws_on_stderr(serve, tmp_path, capsys):
    url, _ = serve("range")
    dest = tmp_path / "ckpt.pth"
    download(url, dest, timeout=5, chunk_size=CHUNK)
    assert dest.read_bytes() == DATA
    assert "ckpt.pth" in capsys.readouterr().err


def test_text_progress_without_tqdm(capsys):
    bar = downloads._StderrProgress("file.pth")
    bar._tqdm_module = None  # as if tqdm were not installed
    bar(50, 100)
    bar(100, 100)
    bar.close()
    err = capsys.readouterr().err
    assert "file.pth" in err and "100.0%" in err


# ---------------------------------------------------------------------------- fetch_official


def test_fetch_official_uses_cached_file_offline(tmp_path, no_network):
    name = "in100-small-vqgan-quantized"
    path = cached_path(name, tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"weights")
    assert fetch_official(name, cache_dir=tmp_path) == path


def test_fetch_official_downloads_into_cache(serve, tmp_path, monkeypatch):
    url, _ = serve("range")
    name = "in1k-small-vqgan-quantized"
    entry = dataclasses.replace(OFFICIAL_CHECKPOINTS[name], url=url, size_bytes=len(DATA))
    monkeypatch.setitem(OFFICIAL_CHECKPOINTS, name, entry)
    monkeypatch.setenv("ALIT_CACHE_DIR", str(tmp_path))
    path = fetch_official(name, progress=lambda d, t: None, timeout=5)
    assert path == tmp_path / "checkpoints" / "imagenet1k" / entry.filename
    assert path.read_bytes() == DATA


def test_fetch_official_vae_offline_gives_the_address_and_the_path(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    name = "in100-small-vae-continuous"
    with pytest.raises(DownloadError, match="by hand") as info:
        fetch_official(name, cache_dir=tmp_path)
    assert OFFICIAL_CHECKPOINTS[name].url in str(info.value)
    assert str(cached_path(name, tmp_path)) in str(info.value)


def test_fetch_official_without_url_says_by_hand(tmp_path, monkeypatch, no_network):
    name = "in100-base-vqgan-quantized"
    monkeypatch.setitem(OFFICIAL_CHECKPOINTS, name,
                        dataclasses.replace(OFFICIAL_CHECKPOINTS[name], url=None))
    with pytest.raises(DownloadError, match="by hand") as info:
        fetch_official(name, cache_dir=tmp_path)
    assert str(cached_path(name, tmp_path)) in str(info.value)


def test_unknown_name_lists_valid_names():
    with pytest.raises(DownloadError) as info:
        get_official("alit-huge")
    for name in OFFICIAL_CHECKPOINTS:
        assert name in str(info.value)
    assert not isinstance(info.value, KeyError)


# ---------------------------------------------------------------------------- registry data


def test_registry_has_the_seven_releases():
    entries = list(OFFICIAL_CHECKPOINTS.values())
    assert len(entries) == 7
    assert len({e.name for e in entries}) == 7
    assert [e.name for e in entries] == list(OFFICIAL_CHECKPOINTS)
    assert [e.dataset for e in entries].count("imagenet1k") == 1
    for entry in entries:
        assert entry.base_tokenizer in ("vqgan", "vae")
        assert entry.supported  # the VAE-based two too, since the KL-16 VAE is implemented
        assert entry.preset.endswith("_quantized" if entry.quantized else "_continuous")
        assert entry.url is None or entry.url.startswith("https://www.dropbox.com/")
        if entry.url:
            assert entry.filename in entry.url
        assert ("VAE" in entry.note) == (entry.base_tokenizer == "vae")
    with pytest.raises(dataclasses.FrozenInstanceError):
        entries[0].url = "x"


def test_direct_url():
    share = "https://www.dropbox.com/scl/fi/abc/f.pth?rlkey=k1&st=s2&dl=0"
    assert direct_url(share) == "https://www.dropbox.com/scl/fi/abc/f.pth?rlkey=k1&st=s2&dl=1"
    assert direct_url("https://www.dropbox.com/s/abc/f.pth?dl=0") == \
        "https://www.dropbox.com/s/abc/f.pth?dl=1"
    for other in ("http://127.0.0.1:8000/f.pth", "https://example.org/f.pth?dl=0",
                  "https://www.dropbox.com/s/abc/f.pth?dl=1"):
        assert direct_url(other) == other


def test_default_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("ALIT_CACHE_DIR", str(tmp_path / "alit"))
    assert default_cache_dir() == tmp_path / "alit"
    monkeypatch.delenv("ALIT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "alit_explorer"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "alit_explorer"


def test_cached_path_layout(tmp_path):
    path = cached_path("in100-semilarge-vqgan-quantized", tmp_path)
    assert path == (tmp_path / "checkpoints" / "imagenet100"
                    / "alit_semilarge_vqgan_quantized_latents.pth")
    assert partial_path(path).name == path.name + ".part"


# ---------------------------------------------------------------------------- KARL releases

# The addresses of ShivamDuggal4/karl's README table (and its pretrained_models/download.py), verbatim.
KARL_URLS = {
    "karl-in1k-small-vqgan-quantized": "https://www.dropbox.com/scl/fi/4a2zwpceavl92ij56ja3m/"
    "karl_small_vqgan_quantized_latents.pth?rlkey=lc49wt2igsdhzfrqwvl62q30z&st=j3f9up9q&dl=0",
    "karl-in100-small-vqgan-quantized": "https://www.dropbox.com/scl/fi/60plmx9s1jsu5axqb1frj/"
    "karl_small_vqgan_quantized_latents.pth?rlkey=v0y3fsureyfijy5m28ba4vpl7&st=haisv8qx&dl=0",
    "karl-in100-small-vqgan-continuous": "https://www.dropbox.com/scl/fi/ipvxil7ubb41wxs25du5p/"
    "karl_small_vqgan_continuous_latents.pth?rlkey=opmua15uarn2yt60yo9j7v5uo&st=bii053ux&dl=0",
    "karl-in100-small-vae-quantized": "https://www.dropbox.com/scl/fi/gynbn6onb5tm1t8pmca0x/"
    "karl_small_vae_quantized_latents.pth?rlkey=93nz1j334ex57myea0qdxu7y5&st=9hjwvyc2&dl=0",
    "karl-in100-small-vae-continuous": "https://www.dropbox.com/scl/fi/v5t6trgczpaprvoow58zk/"
    "karl_small_vae_continuous_latents.pth?rlkey=0tldlcy8ir0lrectdk1o42tch&st=qzfw7g1h&dl=0",
}


def test_registry_has_the_five_karl_releases():
    from alit_core import KARL_PRESETS

    assert {n: e.url for n, e in KARL_CHECKPOINTS.items()} == KARL_URLS
    assert list(KARL_CHECKPOINTS) == list(KARL_URLS)  # the README's order
    assert not set(KARL_CHECKPOINTS) & set(OFFICIAL_CHECKPOINTS)
    paths = set()
    for name, entry in KARL_CHECKPOINTS.items():
        assert entry.family == "karl" and entry.supported and entry.preset in KARL_PRESETS
        assert entry.filename == f"karl_small_{entry.base_tokenizer}_{'quantized' if entry.quantized else 'continuous'}" \
            "_latents.pth"
        assert entry.dataset == ("imagenet1k" if name.startswith("karl-in1k") else "imagenet100")
        # the manifests' float32 bytes; the file's own size is not published, so downloads are not held to it
        assert entry.state_dict_bytes == {"vqgan": 1_643_119_584, "vae": 1_683_357_984}[entry.base_tokenizer] - (
            0 if entry.quantized else 4096 * 12 * 4)
        assert entry.size_bytes is None
        assert get_official(name.upper()) is entry
        paths.add(cached_path(name, "/c"))
    assert len(paths) == 5  # the two vqgan-quantized files share a name, in different dataset folders
    assert all(e.family == "alit" for e in OFFICIAL_CHECKPOINTS.values())


@pytest.mark.parametrize("name", list(KARL_URLS))
def test_fetch_karl_offline_gives_the_address_and_the_path(name, tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DownloadError, match="by hand") as info:
        fetch_official(name, cache_dir=tmp_path)
    assert KARL_URLS[name] in str(info.value)
    assert str(cached_path(name, tmp_path)) in str(info.value)
    assert not cached_path(name, tmp_path).exists()


def test_karl_without_url_points_to_the_karl_readme(tmp_path, monkeypatch, no_network):
    name = "karl-in100-small-vae-quantized"
    monkeypatch.setitem(KARL_CHECKPOINTS, name, dataclasses.replace(KARL_CHECKPOINTS[name], url=None))
    with pytest.raises(DownloadError, match="github.com/ShivamDuggal4/karl#pretrained-checkpoints"):
        fetch_official(name, cache_dir=tmp_path)


def test_unknown_name_lists_karl_names_too():
    with pytest.raises(DownloadError) as info:
        get_official("karl-huge")
    assert all(name in str(info.value) for name in KARL_CHECKPOINTS)
