"""The released ALIT and KARL checkpoints, and where they are kept on this machine.

The official repository (ShivamDuggal4/adaptive-length-tokenizer) links seven checkpoints from
its README, all hosted on Dropbox. :data:`OFFICIAL_CHECKPOINTS` lists them under short names
such as ``"in100-small-vqgan-quantized"``; :func:`fetch_official` returns a local path to one,
downloading it first (`download.py`: resumable, with progress) when it is not in the cache yet.
:data:`KARL_CHECKPOINTS` lists the five checkpoints of the same authors' successor KARL
(ShivamDuggal4/karl), also on Dropbox, under names such as ``"karl-in100-small-vqgan-quantized"``;
every function here takes names of both.

Cache layout
------------
The cache root is :func:`default_cache_dir` (``$ALIT_CACHE_DIR``, else
``$XDG_CACHE_HOME/alit_explorer``, else ``~/.cache/alit_explorer``) unless a ``cache_dir`` is
passed. Checkpoints keep their official file names and sit under the dataset they were trained
on, the way the official repository stores them::

    <cache root>/checkpoints/imagenet1k/alit_vqgan_small_quantized_latent.pth
    <cache root>/checkpoints/imagenet100/alit_small_vqgan_quantized_latents.pth
    ...

Downloading by hand
-------------------
When the download fails, the error message gives the address and the exact path to put the file
at. Download it with a browser or ``wget``, save it under that path (``cached_path(name)``), and
:func:`fetch_official` will then use it without touching the network.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import DownloadError
from .download import ProgressCallback, download

__all__ = [
    "KARL_CHECKPOINTS",
    "OFFICIAL_CHECKPOINTS",
    "OfficialCheckpoint",
    "cached_path",
    "default_cache_dir",
    "fetch_official",
    "get_official",
]

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
