"""A resumable HTTP download into a file, for the released checkpoints (`registry.fetch_official`).

While a download runs, the bytes go to ``<file>.part`` next to the final name. Only a complete
file, of the announced size, is renamed to the final name, so a file under the final name is
always whole. An interrupted download leaves the ``.part`` file behind, and the next call resumes
it with an HTTP Range request instead of starting the 1.6 GB over. When it fails (no network, a
Dropbox link that has expired, a proxy in the way), the error message gives the address and the
exact path to put the file at, for a download by hand.

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
from pathlib import Path

from ..errors import DownloadError

__all__ = ["ProgressCallback", "direct_url", "download", "partial_path"]

#: ``progress(done_bytes, total_bytes_or_None)``, called after every chunk written.
ProgressCallback = Callable[[int, int | None], None]


def partial_path(dest: os.PathLike | str) -> Path:
    """The ``.part`` file an unfinished download of ``dest`` is kept in."""
    dest = Path(dest)
    return dest.with_suffix(dest.suffix + ".part")


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
