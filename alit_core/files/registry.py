"""The released ALIT checkpoints, and a resumable downloader for them.

The official repository (ShivamDuggal4/adaptive-length-tokenizer) links seven checkpoints from
its README, all hosted on Dropbox. :data:`OFFICIAL_CHECKPOINTS` lists them under short names
such as ``"in100-small-vqgan-quantized"``; :func:`fetch_official` returns a local path to one,
downloading it first when it is not in the cache yet. :data:`KARL_CHECKPOINTS` lists the five
checkpoints of the same authors' successor KARL (ShivamDuggal4/karl), also on Dropbox, under names
such as ``"karl-in100-small-vqgan-quantized"``; every function here takes names of both.

Cache layout
------------
The cache root is :func:`default_cache_dir` (``$ALIT_CACHE_DIR``, else
``$XDG_CACHE_HOME/alit_explorer``, else ``~/.cache/alit_explorer``) unless a ``cache_dir`` is
passed. Checkpoints keep their official file names and sit under the dataset they were trained
on, the way the official repository stores them::

    <cache root>/checkpoints/imagenet1k/alit_vqgan_small_quantized_latent.pth
    <cache root>/checkpoints/imagenet100/alit_small_vqgan_quantized_latents.pth
    ...

While a download runs, the bytes go to ``<file>.part`` next to the final name. Only a complete
file, of the announced size, is renamed to the final name, so a file under the final name is
always whole. An interrupted download leaves the ``.part`` file behind, and the next call resumes
it with an HTTP Range request instead of starting the 1.6 GB over.

Downloading by hand
-------------------
When the download fails (no network, a Dropbox link that has expired, a proxy in the way), the
error message gives the address and the exact path to put the file at. Download it with a browser
or ``wget``, save it under that path (``cached_path(name)``), and :func:`fetch_official` will
then use it without touching the network.

Only the standard library is used for the transfer; ``tqdm`` draws the progress bar when it is
installed, and a plain text bar on stderr is drawn otherwise.
"""

from __future__ import annotations

import http.client
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import DownloadError

__all__ = [
    "KARL_CHECKPOINTS",
    "OFFICIAL_CHECKPOINTS",
    "OfficialCheckpoint",
    "ProgressCallback",
    "cached_path",
    "default_cache_dir",
    "direct_url",
    "download",
    "fetch_official",
    "get_official",
    "partial_path",
]

#: ``progress(done_bytes, total_bytes_or_None)``, called after every chunk written.
ProgressCallback = Callable[[int, int | None], None]


# --------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OfficialCheckpoint:
    """One checkpoint from the official README's "Pretrained Checkpoints" table.

    ``preset`` names the architecture preset that builds a model these weights fit.
    ``filename`` is the official file name (as in the Dropbox link), so a file downloaded by
    hand keeps the name it comes with. ``size_bytes`` is None when the size is not known;
    when it is known, downloads and cached files are checked against it.
    """

    name: str
    preset: str
    dataset: str  # "imagenet1k" or "imagenet100"; also the cache sub-folder
    base_tokenizer: str  # "vqgan" or "vae"
    quantized: bool  # True: the 1D latent tokens are vector-quantized
    url: str | None
    filename: str
    supported: bool  # False: alit_core cannot build a model for it yet
    note: str
    size_bytes: int | None = None
    family: str = "alit"  # "alit" or "karl" (its successor; `alit_core.model.karl`)
    # float32 bytes of the state dict the file holds (its official layout, GAN-loss modules
    # included): a lower bound of the file's size, which the official pages do not give.
    state_dict_bytes: int | None = None


# Addresses as the official README gives them (they match
# adaptive_tokenizers/pretrained_models/download.py, which lists the six ImageNet-100 ones).
_README = "https://github.com/ShivamDuggal4/adaptive-length-tokenizer#pretrained-checkpoints"
_DROPBOX = "https://www.dropbox.com/scl/fi/"

_ENTRIES = (
    OfficialCheckpoint(
        name="in1k-small-vqgan-quantized",
        preset="alit_small_vqgan_quantized",
        dataset="imagenet1k",
        base_tokenizer="vqgan",
        quantized=True,
        url=_DROPBOX + "u8jyro5wysttp5mvs6gir/alit_vqgan_small_quantized_latent.pth"
        "?rlkey=1py1s9755gjhdyw5ifd9h2wff&st=swdbevjk&dl=0",
        filename="alit_vqgan_small_quantized_latent.pth",
        supported=True,
        note="alit_small, VQGAN base tokenizer, quantized + factorized 1D latents, "
        "trained on ImageNet-1K (the only ImageNet-1K release)",
    ),
    OfficialCheckpoint(
        name="in100-small-vqgan-quantized",
        preset="alit_small_vqgan_quantized",
        dataset="imagenet100",
        base_tokenizer="vqgan",
        quantized=True,
        url=_DROPBOX + "iszluhiop09z3afo2gw5f/alit_small_vqgan_quantized_latents.pth"
        "?rlkey=klt0zgeunb60l1snuzhjdzdq2&st=zgwzgc2r&dl=0",
        filename="alit_small_vqgan_quantized_latents.pth",
        supported=True,
        note="alit_small, VQGAN base tokenizer, quantized + factorized 1D latents, "
        "trained on ImageNet-100 (the model the paper's token visualizations use)",
    ),
    OfficialCheckpoint(
        name="in100-base-vqgan-quantized",
        preset="alit_base_vqgan_quantized",
        dataset="imagenet100",
        base_tokenizer="vqgan",
        quantized=True,
        url=_DROPBOX + "6cygifz37knpqtkxgfj81/alit_base_vqgan_quantized_latents.pth"
        "?rlkey=r8hn0d4d8j8eg2wjorzl9c67s&st=c5iv7wor&dl=0",
        filename="alit_base_vqgan_quantized_latents.pth",
        supported=True,
        note="alit_base, VQGAN base tokenizer, quantized + factorized 1D latents, "
        "trained on ImageNet-100",
    ),
    OfficialCheckpoint(
        name="in100-semilarge-vqgan-quantized",
        preset="alit_semilarge_vqgan_quantized",
        dataset="imagenet100",
        base_tokenizer="vqgan",
        quantized=True,
        url=_DROPBOX + "wcp7s6w86slh1yy4m3egc/alit_semilarge_vqgan_quantized_latents.pth"
        "?rlkey=cf2s13c6ah3ru4ly9tb911gi7&st=d11uoq0i&dl=0",
        filename="alit_semilarge_vqgan_quantized_latents.pth",
        supported=True,
        note="alit_semilarge, VQGAN base tokenizer, quantized + factorized 1D latents, "
        "trained on ImageNet-100",
    ),
    OfficialCheckpoint(
        name="in100-small-vqgan-continuous",
        preset="alit_small_vqgan_continuous",
        dataset="imagenet100",
        base_tokenizer="vqgan",
        quantized=False,
        url=_DROPBOX + "twbxjch2hutxjsy3sd85y/alit_small_vqgan_continuous_latents.pth"
        "?rlkey=68ycbjp6upkrxt22w5rm58cjv&st=5nyk6uvu&dl=0",
        filename="alit_small_vqgan_continuous_latents.pth",
        supported=True,
        note="alit_small, VQGAN base tokenizer, continuous (not quantized) factorized 1D "
        "latents, trained on ImageNet-100",
    ),
    OfficialCheckpoint(
        name="in100-small-vae-quantized",
        preset="alit_small_vae_quantized",
        dataset="imagenet100",
        base_tokenizer="vae",
        quantized=True,
        url=_DROPBOX + "svykasoyyoapfzlghjuz2/alit_small_vae_quantized_latents.pth"
        "?rlkey=dtvyj74zq593zc7c63miwkhs3&st=dwm9w2sp&dl=0",
        filename="alit_small_vae_quantized_latents.pth",
        supported=True,
        note="alit_small, KL-16 VAE base tokenizer (the decoder regresses the VAE latents), quantized + "
        "factorized 1D latents, trained on ImageNet-100",
    ),
    OfficialCheckpoint(
        name="in100-small-vae-continuous",
        preset="alit_small_vae_continuous",
        dataset="imagenet100",
        base_tokenizer="vae",
        quantized=False,
        url=_DROPBOX + "bq2yzr7dufvrpnycb856b/alit_small_vae_continuous_latents.pth"
        "?rlkey=hjx6jpr6vvfzhtgkp1cc1rnrs&st=4aa1vyh9&dl=0",
        filename="alit_small_vae_continuous_latents.pth",
        supported=True,
        note="alit_small, KL-16 VAE base tokenizer (the decoder regresses the VAE latents), continuous "
        "(not quantized) factorized 1D latents, trained on ImageNet-100",
    ),
)

#: The seven released checkpoints, by short name, in the README's order.
OFFICIAL_CHECKPOINTS: dict[str, OfficialCheckpoint] = {c.name: c for c in _ENTRIES}

# KARL (ShivamDuggal4/karl): the five checkpoints of its README table, with the addresses its README
# and kolmogorov_tokenizers/pretrained_models/download.py give. All are karl_small (width 1024, 8
# layers, 8 heads); their layouts are ../shared/karl_reference/manifests/.
_KARL_README = "https://github.com/ShivamDuggal4/karl#pretrained-checkpoints"
_README_OF = {"alit": _README, "karl": _KARL_README}
# float32 bytes of each layout's state dict (the manifests' element counts x 4)
_KARL_BYTES = {("vqgan", True): 1_643_119_584, ("vqgan", False): 1_642_922_976,
               ("vae", True): 1_683_357_984, ("vae", False): 1_683_161_376}


def _karl(dataset: str, base: str, quantized: bool, key: str, query: str) -> OfficialCheckpoint:
    kind = "quantized" if quantized else "continuous"
    filename = f"karl_small_{base}_{kind}_latents.pth"
    short = "in1k" if dataset == "imagenet1k" else "in100"
    return OfficialCheckpoint(
        name=f"karl-{short}-small-{base}-{kind}",
        preset=f"karl_small_{base}_{kind}",
        dataset=dataset,
        base_tokenizer=base,
        quantized=quantized,
        url=f"{_DROPBOX}{key}/{filename}?{query}&dl=0",
        filename=filename,
        supported=True,
        note=f"KARL karl_small (single pass), {'KL-16 VAE' if base == 'vae' else 'VQGAN'} base tokenizer, "
        f"{kind} factorized 1D latents, trained on {'ImageNet-1K' if short == 'in1k' else 'ImageNet-100'}",
        family="karl",
        state_dict_bytes=_KARL_BYTES[base, quantized],
    )


_KARL_ENTRIES = (
    _karl("imagenet1k", "vqgan", True, "4a2zwpceavl92ij56ja3m", "rlkey=lc49wt2igsdhzfrqwvl62q30z&st=j3f9up9q"),
    _karl("imagenet100", "vqgan", True, "60plmx9s1jsu5axqb1frj", "rlkey=v0y3fsureyfijy5m28ba4vpl7&st=haisv8qx"),
    _karl("imagenet100", "vqgan", False, "ipvxil7ubb41wxs25du5p", "rlkey=opmua15uarn2yt60yo9j7v5uo&st=bii053ux"),
    _karl("imagenet100", "vae", True, "gynbn6onb5tm1t8pmca0x", "rlkey=93nz1j334ex57myea0qdxu7y5&st=9hjwvyc2"),
    _karl("imagenet100", "vae", False, "v5t6trgczpaprvoow58zk", "rlkey=0tldlcy8ir0lrectdk1o42tch&st=qzfw7g1h"),
)

#: The five released KARL checkpoints, by short name ("karl-in100-small-vqgan-quantized", ...), in
#: its README's order. Kept apart from OFFICIAL_CHECKPOINTS (whose users expect ALIT models);
#: `get_official`, `cached_path`, `fetch_official` and load_tokenizer("official:<name>") take both.
KARL_CHECKPOINTS: dict[str, OfficialCheckpoint] = {c.name: c for c in _KARL_ENTRIES}


def get_official(name: str) -> OfficialCheckpoint:
    """Return the registry entry called ``name`` (ALIT or KARL); DownloadError listing the valid names if none."""
    key = name.strip().lower() if isinstance(name, str) else None
    entry = OFFICIAL_CHECKPOINTS.get(key) or KARL_CHECKPOINTS.get(key)
    if entry is None:
        valid = ", ".join([*OFFICIAL_CHECKPOINTS, *KARL_CHECKPOINTS])
        raise DownloadError(f"unknown official checkpoint {name!r}; valid names: {valid}")
    return entry


# --------------------------------------------------------------------------------------------
# Cache locations
# --------------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """The cache root: $ALIT_CACHE_DIR, else $XDG_CACHE_HOME/alit_explorer, else ~/.cache/...

    The environment is read at every call (no module state), so tests and users can change it.
    """
    explicit = os.environ.get("ALIT_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "alit_explorer"


def cached_path(name: str, cache_dir: os.PathLike | str | None = None) -> Path:
    """Where checkpoint ``name`` is (or would be) stored in the cache."""
    entry = get_official(name)
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return root / "checkpoints" / entry.dataset / entry.filename


def partial_path(dest: os.PathLike | str) -> Path:
    """The ``.part`` file an unfinished download of ``dest`` is kept in."""
    dest = Path(dest)
    return dest.with_suffix(dest.suffix + ".part")


# --------------------------------------------------------------------------------------------
# Downloading
# --------------------------------------------------------------------------------------------

# Dropbox hands the file itself to download tools; the official download script also
# identifies itself as wget for that reason.
_USER_AGENT = "Wget/1.21 (compatible; alit-explorer)"

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)


def direct_url(url: str) -> str:
    """Turn a Dropbox share link into a direct-download link (``dl=0`` -> ``dl=1``).

    With ``dl=0`` Dropbox answers with its preview web page, not the file. URLs of other
    hosts are returned unchanged.
    """
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "").lower()
    if not (host == "dropbox.com" or host.endswith(".dropbox.com")):
        return url
    # Edit the query as text so the other parameters (rlkey, st) keep their exact spelling.
    query, n = re.subn(r"(^|&)dl=[^&]*", r"\1dl=1", parts.query)
    if n == 0:
        query = f"{query}&dl=1" if query else "dl=1"
    return urllib.parse.urlunsplit(parts._replace(query=query))


class _BadResponse(Exception):
    """The server answered, but not with the file (a web page, a wrong size...)."""


def _by_hand_message(url: str, dest: Path, reason: str) -> str:
    return (
        f"download failed: {reason}. "
        f"Download the file by hand from {url} and put it at {dest}"
    )


def _describe(exc: BaseException) -> str:
    """A short human reason for a network exception."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"the server answered HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"could not reach the server ({exc.reason})"
    if isinstance(exc, TimeoutError):
        return "the connection timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _open(url: str, offset: int, timeout: float):
    """Open ``url`` asking for bytes from ``offset`` on; return (response, offset, total).

    The returned offset is where the body really starts: 0 when the server ignored the Range
    header and sends the whole file. ``total`` is the full file size, or None if not announced.
    """
    headers = {"User-Agent": _USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            # The .part file is at least as long as the file: it is complete or stale.
            # Either way the safe answer is to fetch the whole file again.
            exc.close()
            return _open(url, 0, timeout)
        raise

    if resp.status == 206:
        match = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
        if match and int(match.group(1)) == offset:
            total = None if match.group(3) == "*" else int(match.group(3))
            return resp, offset, total
        resp.close()
        if offset == 0:
            raise _BadResponse("the server sent a partial answer that was not asked for")
        return _open(url, 0, timeout)  # resumed at the wrong place: start over

    # 200: the whole file follows (also when the server ignored our Range header).
    length = resp.headers.get("Content-Length")
    return resp, 0, int(length) if length and length.isdigit() else None


def _transfer(
    url: str,
    part: Path,
    *,
    progress: ProgressCallback,
    timeout: float,
    expected_size: int | None,
    chunk_size: int,
) -> tuple[int, int | None]:
    """Append the rest of ``url`` to ``part``; return (bytes now in part, announced total)."""
    have = part.stat().st_size if part.exists() else 0
    resp, offset, total = _open(url, have, timeout)
    with resp:
        if resp.headers.get_content_type() == "text/html":
            raise _BadResponse("the server sent a web page instead of the file "
                               "(the link may have expired)")
        if total is not None and expected_size is not None and total != expected_size:
            # Fail before fetching gigabytes of the wrong thing; the .part cannot be trusted.
            part.unlink(missing_ok=True)
            raise _BadResponse(f"the server announces {total} bytes, expected {expected_size}")
        done = offset
        with open(part, "ab" if offset else "wb") as out:
            while True:
                chunk = resp.read(chunk_size)
                if not chunk:
                    break
                out.write(chunk)
                done += len(chunk)
                progress(done, total)
    return done, total


def download(
    url: str,
    dest: os.PathLike | str,
    *,
    progress: ProgressCallback | None = None,
    timeout: float = 30.0,
    expected_size: int | None = None,
    chunk_size: int = 1 << 20,
) -> Path:
    """Download ``url`` to ``dest`` and return ``dest``; resume an earlier ``.part`` file.

    ``progress(done_bytes, total_bytes)`` is called after every chunk (default: a progress bar
    on stderr). The final size is checked against what the server announced and against
    ``expected_size`` when given; on a mismatch DownloadError is raised and nothing is left
    under ``dest``. Network failures also raise DownloadError, whose message says how to
    download the file by hand; an interrupted transfer keeps its ``.part`` file for resuming.
    """
    dest = Path(dest)
    part = partial_path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)

    if expected_size is not None and part.exists():
        have = part.stat().st_size
        if have == expected_size:  # finished earlier, but never renamed
            os.replace(part, dest)
            return dest
        if have > expected_size:
            part.unlink()

    bar = None
    if progress is None:
        progress = bar = _StderrProgress(dest.name)
    try:
        done, total = _transfer(
            direct_url(url), part, progress=progress, timeout=timeout,
            expected_size=expected_size, chunk_size=chunk_size,
        )
    except (OSError, http.client.HTTPException, _BadResponse) as exc:
        # OSError covers URLError/HTTPError, refused and reset connections and timeouts.
        # The .part file stays (unless known bad) so that the next call can resume it.
        raise DownloadError(_by_hand_message(url, dest, _describe(exc))) from exc
    finally:
        if bar is not None:
            bar.close()

    if total is not None and done < total:
        raise DownloadError(_by_hand_message(
            url, dest, f"the connection closed after {done} of {total} bytes "
            "(run again to resume)"))
    if (total is not None and done != total) or (
        expected_size is not None and done != expected_size
    ):
        part.unlink(missing_ok=True)
        wanted = expected_size if expected_size is not None else total
        raise DownloadError(_by_hand_message(
            url, dest, f"received {done} bytes, expected {wanted}"))

    os.replace(part, dest)  # atomic on one file system: dest is either absent or whole
    return dest


def fetch_official(
    name: str,
    *,
    cache_dir: os.PathLike | str | None = None,
    progress: ProgressCallback | None = None,
    timeout: float = 30.0,
) -> Path:
    """Return the local path of official checkpoint ``name``, downloading it if needed.

    A file already in the cache (of the right size, when the size is known) is returned
    without any network access.
    """
    entry = get_official(name)
    path = cached_path(name, cache_dir)
    if path.is_file() and (entry.size_bytes is None or path.stat().st_size == entry.size_bytes):
        return path
    if not entry.supported:
        # Refuse before a 1.6 GB download that could not be used anyway.
        raise DownloadError(f"official checkpoint {entry.name!r} is not supported: {entry.note}")
    if entry.url is None:
        raise DownloadError(
            f"no download address is known for official checkpoint {entry.name!r}. "
            f"Download {entry.filename} by hand (see {_README_OF[entry.family]}) and put it at {path}"
        )
    return download(entry.url, path, progress=progress, timeout=timeout,
                    expected_size=entry.size_bytes)


# --------------------------------------------------------------------------------------------
# Default progress display
# --------------------------------------------------------------------------------------------


class _StderrProgress:
    """Progress bar on stderr: tqdm when it is installed, a plain text bar otherwise."""

    _WIDTH = 30
    _MIN_INTERVAL = 0.2  # seconds between redraws of the text bar, to keep logs short

    def __init__(self, label: str):
        self.label = label
        self._tqdm = None
        self._last_draw = 0.0
        self._drew = False
        try:
            import tqdm  # optional dependency
        except ImportError:
            self._tqdm_module = None
        else:
            self._tqdm_module = tqdm

    def __call__(self, done: int, total: int | None) -> None:
        if self._tqdm_module is not None:
            if self._tqdm is None:
                self._tqdm = self._tqdm_module.tqdm(
                    total=total, desc=self.label, unit="B", unit_scale=True,
                    unit_divisor=1024, file=sys.stderr,
                )
            self._tqdm.update(done - self._tqdm.n)
            return
        now = time.monotonic()
        if now - self._last_draw < self._MIN_INTERVAL and done != total:
            return
        self._last_draw = now
        self._drew = True
        mb = done / 2**20
        if total:
            filled = int(self._WIDTH * min(done / total, 1.0))
            bar = "#" * filled + "." * (self._WIDTH - filled)
            line = (f"{self.label} [{bar}] {100 * done / total:5.1f}% "
                    f"{mb:.1f}/{total / 2**20:.1f} MiB")
        else:
            line = f"{self.label} {mb:.1f} MiB"
        sys.stderr.write("\r" + line)
        sys.stderr.flush()

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()
        elif self._drew:
            sys.stderr.write("\n")
            sys.stderr.flush()
