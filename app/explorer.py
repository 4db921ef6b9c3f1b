"""What the app computes, without gradio: model loading (once, shared), rollouts kept as plain
arrays so that views, re-selection and exports never recompute, and the exports themselves.

Uses only alit_core's public API.
"""

from __future__ import annotations

import io
import json
import threading
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import alit_core
from alit_core import (Criterion, image_to_tensor, latent_attention_maps, load_tokenizer, open_image,
                       select_iterations, square_crop_resize, tensor_to_image)

from . import figures

ASSETS = Path(__file__).resolve().parent.parent / "assets"
BUNDLED = "bundled model"


def is_karl(tok) -> bool:
    """A KARL model (one pass per budget) rather than ALIT (recurrent iterations)."""
    return getattr(tok, "family", "alit") == "karl"


class ModelCache:
    """Tokenizers by (source, device, precision), loaded once and shared by every session.

    At most `capacity` models stay in memory besides the default one (least recently used go
    first: a visitor trying several official checkpoints must not exhaust the server's memory).
    With local_paths=False only the default model, `bundled:`, `official:` and `preset:` names load: a
    public server must not open whatever file path a visitor types.
    Requests run through gradio's queue. Each model loads under a lock of its own, so two users asking
    for a new model at once load it once, while a long load (a released checkpoint's download) holds up
    no one asking for another model; the cache's own lock is held only for its bookkeeping.
    """

    def __init__(self, default_source: str | None = None, device: str | None = None, capacity: int = 2,
                 local_paths: bool = True):
        self.default_source = default_source
        self.default_device = device
        self.capacity = max(0, int(capacity))
        self.local_paths = local_paths
        self._models: OrderedDict[tuple, alit_core.Tokenizer] = OrderedDict()
        self._loading: dict[tuple, threading.Lock] = {}  # a lock per model being loaded
        self._lock = threading.Lock()

    def check(self, source: str | None) -> None:
        """Raise ValueError if this server does not load `source`."""
        named = source is None or source.startswith(("bundled:", "official:", "preset:")) or source == self.default_source
        if not (named or self.local_paths):
            raise ValueError(f"this server loads only the listed models, not local files ({source!r}); "
                             "start the app with --local-checkpoints to allow paths")

    def resolve(self, source: str | None) -> str:
        """The model a page's choice means, by one name: None, "" and BUNDLED (the list's first entry) are the
        server's default; the default bundled model is "bundled:default" however it was named."""
        return (None if source in (None, "", BUNDLED) else source) or self.default_source or "bundled:default"

    def _key(self, source: str | None, device: str | None, dtype: str) -> tuple:
        source = self.resolve(source)
        return (None if source == "bundled:default" else source, device or self.default_device, dtype)

    def get(self, source: str | None = None, device: str | None = None, dtype: str = "float32", progress=None):
        key = self._key(source, device, dtype)
        self.check(key[0])
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:  # the first asker loads; the others wait for it here, and then find it loaded
            with self._lock:
                tok = self._models.get(key)
            if tok is None:
                tok = load_tokenizer(key[0], device=key[1], dtype=dtype, progress=progress)
            with self._lock:
                self._loading.pop(key, None)
                self._models[key] = tok
                self._models.move_to_end(key)
                # the least recently used beyond `capacity` go, never the default model or the one just asked
                # for (so capacity 0 keeps that one alone)
                others = [k for k in self._models if k[0] != self.default_source]
                excess = len(others) - max(1, self.capacity)
                for old in [k for k in others if k != key][: max(0, excess)]:
                    del self._models[old]
            return tok

    def peek(self, source: str | None = None, device: str | None = None, dtype: str = "float32"):
        """The tokenizer if it is already in memory, else None (never loads)."""
        with self._lock:
            return self._models.get(self._key(source, device, dtype))

    def known(self, source: str | None = None, device: str | None = None, dtype: str = "float32"):
        """The tokenizer if it costs no download (in memory, or a bundled model, read from assets/), else None:
        also when the bundled file cannot be read (the run that follows says why)."""
        tok = self.peek(source, device, dtype)
        if tok is not None or not self.resolve(source).startswith("bundled:"):
            return tok
        try:
            return self.get(source, device, dtype)
        except (alit_core.ALITError, ValueError):  # a missing or unknown bundled model; a source this server refuses
            return None


@dataclass
class Record:
    """One image's rollout, as arrays (T iterations, g x g grid); for a KARL model, its budget sweep (one
    independent pass per budget: `budgets`; `tokens` are KARL's estimated counts, budget minus the
    latents that halt; `halt` the latents that halt, (budget,) bool; maps over all the budget's latents)."""

    name: str
    image: np.ndarray  # (H, W, 3) uint8 at the model's resolution
    grid: int
    tokens: list[int] = field(default_factory=list)
    l1: list[float] = field(default_factory=list)
    psnr: list[float] = field(default_factory=list)
    recons: list[np.ndarray] = field(default_factory=list)  # (H, W, 3) uint8
    halt: list[np.ndarray | None] = field(default_factory=list)  # (g, g) bool
    maps: list[np.ndarray] = field(default_factory=list)  # (heads, N_t, g, g) attention to each latent
    codes: list[np.ndarray | None] = field(default_factory=list)  # (N_t,) latent codebook indices
    bits_per_token: float = 12.0
    layer: int | None = None  # decoder layer whose attention is kept; None keeps none
    family: str = "alit"  # or "karl"
    budgets: list[int] = field(default_factory=list)  # KARL: the budget T of each pass
    quality: float | None = None  # KARL: the desired L1 asked for
    quality_bin: float | None = None  # KARL: the quality bin it conditioned on
    top_budget: int = 0  # KARL: the sweep's largest budget (known before its first pass)
    # ALIT: the base tokenizer alone, decoding this image's own codes (Tokenizer.base_reconstruction): the
    # level the error curve flattens near (not a bound); base is "VQGAN" or "VAE"
    base: str = "VQGAN"
    base_l1: float | None = None
    base_psnr: float | None = None

    @property
    def karl(self) -> bool:
        return self.family == "karl"

    def add_pass(self, run) -> None:
        """One pass of a KARL budget sweep (a KARLPass of one image)."""
        self.budgets.append(run.budget)
        self.quality_bin = float(run.quality_binned[0])
        self.tokens.append(run.num_tokens[0])
        self.l1.append(float(run.l1[0]))
        self.psnr.append(float(run.psnr[0]))
        self.recons.append(as_image(run.recon[0]))
        halted = run.halt_mask[0].cpu().numpy()
        self.halt.append(halted)
        if self.layer is not None:
            self.maps.append(run.latent_maps(self.layer)[0].cpu().numpy().astype(np.float32))
        self.codes.append(None if run.codes is None else run.codes[0].cpu().numpy()[~halted])

    def columns(self, t: int) -> int:
        """How many latents iteration (or pass) t has in its attention maps: its tokens, or KARL's budget."""
        return self.budgets[t] if self.karl else self.tokens[t]

    def token_note(self, t: int, k: int) -> str:
        """Where latent k of iteration (pass) t comes from, in a few words."""
        if self.karl:
            return f"latent {k} of budget {self.budgets[t]}, {'halted' if self.halt[t][k] else 'kept'}"
        return f"added at iteration {k // self.tokens[0]}"

    def step_name(self, t: int) -> str:
        """'iteration 3' (ALIT) or 'budget 128' (KARL)."""
        return f"budget {self.budgets[t]}" if self.karl else f"iteration {t}"

    def add(self, step, grid: int) -> None:
        self.tokens.append(step.num_tokens)
        self.l1.append(float(step.l1[0]))
        self.psnr.append(float(step.psnr[0]))
        self.recons.append(as_image(step.recon[0]))
        self.halt.append(None if step.halt_mask is None else step.halt_mask[0].cpu().numpy().reshape(grid, grid))
        attn = step.attention.get(self.layer)
        if attn is not None:
            a = attn[0] if attn.dim() == 4 else attn[0][None]  # (heads, L, L)
            self.maps.append(latent_attention_maps(a, grid).cpu().numpy().astype(np.float32))
        self.codes.append(None if step.codes is None else step.codes[0].cpu().numpy())

    def select(self, criterion: Criterion) -> int:
        if self.karl:  # KARL's own count: the pass at its full budget
            return len(self.tokens) - 1
        return select_iterations(torch.tensor([self.l1]).T, torch.tensor([self.psnr]).T, criterion,
                                 self.tokens[0])[0]

    def attention(self, iteration: int, head: str | int = "mean") -> np.ndarray:
        """(N_t, g, g) maps of one iteration, for one head or their mean."""
        m = self.maps[iteration]
        return m.mean(axis=0) if head == "mean" else m[int(head)]

    def segments(self, iteration: int, head: str | int = "mean") -> np.ndarray:
        """Strongest latent per grid position (g, g)."""
        return self.attention(iteration, head).argmax(axis=0)

    def summary(self, selected: int) -> dict:
        if self.karl:
            return {
                "name": self.name, "family": "karl", "quality": self.quality, "quality_bin": self.quality_bin,
                "selected_tokens": self.tokens[selected], "selected_budget": self.budgets[selected],
                "passes": [{"budget": b, "tokens": n, "halted": b - n, "l1": round(l, 6), "psnr": round(p, 3)}
                           for b, n, l, p in zip(self.budgets, self.tokens, self.l1, self.psnr)],
            }
        base = {} if self.base_l1 is None else {"base_tokenizer_alone": {
            "base": self.base, "l1": round(self.base_l1, 6), "psnr": round(self.base_psnr, 3)}}
        return {
            "name": self.name,
            "selected_tokens": self.tokens[selected],
            "selected_iteration": selected,
            "iterations": [{"iteration": t, "tokens": n, "l1": round(l, 6), "psnr": round(p, 3)}
                           for t, (n, l, p) in enumerate(zip(self.tokens, self.l1, self.psnr))],
            **base,
        }


# The app's one image type: (H, W, 3) uint8 arrays, what gradio shows. alit_core's conversions
# cross the boundary: `as_tensor` into the tokenizer, `as_image` out of it.
def as_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float in [0, 1], what the tokenizer takes."""
    return image_to_tensor(Image.fromarray(image))


def as_image(pixels: torch.Tensor) -> np.ndarray:
    """A reconstruction (3, H, W) in [0, 1] (clamped, rounded) -> (H, W, 3) uint8."""
    return np.asarray(tensor_to_image(pixels))


@dataclass
class Upload:
    image: np.ndarray  # (size, size, 3) uint8: what the model sees
    notes: list[str]  # what the loader's policy did that the user may not expect


def prepare(path_or_image, size: int) -> Upload:
    """An uploaded file (any format, EXIF, modes, ...), opened once, at the model's size, with its
    notes; ImageInputError if it cannot be used."""
    img = open_image(path_or_image)
    return Upload(np.asarray(square_crop_resize(img, size)), input_notes(img, size))


def input_notes(img: Image.Image, size: int) -> list[str]:
    """What the loader's policy did to an opened file that the user may not expect, one sentence each."""
    (w, h), frames = img.size, img.info.get("frames", 1)
    notes = []
    side = min(w, h)
    if max(w, h) > 2 * side:
        notes.append(f"The image is {w}x{h} pixels: only its centred {side}x{side} square is tokenized.")
    if side < size:
        notes.append(f"Its centred square is only {side}x{side} pixels: it is scaled up to the model's "
                     f"{size}x{size}, so expect a blurry original.")
    if frames > 1:
        notes.append(f"The image is animated ({frames} frames): only the first frame is tokenized.")
    return notes


def rollout(tok, image: np.ndarray, name: str, *, halting: str, seed: int, max_iterations: int,
            layer: int | None = None, quality: float | None = None):
    """Yield the growing Record after each iteration (the same object, updated in place); for a KARL
    model, after each pass of its budget sweep (at most `max_iterations` budgets) at the desired L1
    `quality` (None: the model's default), halting and seed unused.

    `layer` (negative counts from the end) keeps that decoder layer's attention, per head; None
    keeps none, so the fused attention kernel runs.
    """
    layer = None if layer is None else layer % tok.config.dec_depth
    rec = Record(name=name, image=image, grid=tok.config.grid_size, layer=layer,
                 bits_per_token=tok.config.bits_per_token)
    x = as_tensor(image)[None]
    if is_karl(tok):
        rec.family, rec.quality = "karl", float(tok.config.default_quality if quality is None else quality)
        budgets = tok.sweep_budgets[:max_iterations]
        rec.top_budget = budgets[-1]
        for run in tok.budget_sweep(x, budgets, rec.quality, attention_layers=layer,
                                    attention_heads="all"):
            rec.add_pass(run)
            yield rec
        return
    tokens = tok.image_tokens(x)  # encoded once: for the rollout and the base tokenizer's own drawing
    last = min(max_iterations or tok.config.iterations, tok.config.iterations) - 1
    for step in tok.rollout(tokens, halting=halting, seed=seed, max_iterations=max_iterations,
                            attention_layers=rec.layer, attention_heads="all"):
        rec.add(step, rec.grid)
        if step.iteration == last:  # needed only with the whole curve: no wait before the first iteration
            alone = tok.base_reconstruction(tokens)
            rec.base = tok.config.base_name.upper()
            rec.base_l1, rec.base_psnr = float(alone.l1[0]), float(alone.psnr[0])
        yield rec


def complete(tok, image: np.ndarray, name: str, *, halting: str = "deterministic", seed: int = 0,
             max_iterations: int | None = None, quality: float | None = None) -> Record:
    """Every iteration (KARL: every pass) at once, without attention maps (for the API and the batch tab)."""
    rec = None
    for rec in rollout(tok, image, name, halting=halting, seed=seed, quality=quality,
                       max_iterations=max_iterations or steps(tok)):
        pass
    return rec


def steps(tok) -> int:
    """A model's iterations (ALIT) or the passes of its budget sweep (KARL)."""
    return len(tok.sweep_budgets) if is_karl(tok) else tok.config.iterations


def warm_up(tok) -> None:
    """One untimed iteration, as the Explore tab runs it (attention kept), at start-up.

    A process's first rollout pays one-off costs (allocator growth, kernel choices, lazy imports);
    paid here, they do not land on the first visitor (about half a second less to the first
    iteration of the first request, measured with benchmarks/app_latency.py on CPU).
    """
    blank = np.full((tok.resolution, tok.resolution, 3), 128, dtype=np.uint8)
    for _ in rollout(tok, blank, "warm-up", halting="deterministic", seed=0, max_iterations=1, layer=-1):
        pass


def complexity_row(rec: Record, selected: int) -> dict:
    row = {"name": rec.name, "tokens": rec.tokens[selected], "l1": rec.l1[selected], "psnr": rec.psnr[selected]}
    row.update(alit_core.complexity(rec.image))
    return row


def select_many(tok, images: list[np.ndarray], criterion: Criterion, batch: int = 16, progress=None) -> list[dict]:
    """Selected tokens, L1 and PSNR per image: `encode` in batches, with early exit.

    The Batch tab needs only the selection, so it stops each image at its iteration: decided
    images leave their batch, and a batch ends when its last image is decided. progress(done)
    is called before each batch.
    """
    out = []
    for start in range(0, len(images), batch):
        if progress is not None:
            progress(start)
        x = torch.stack([as_tensor(im) for im in images[start : start + batch]])
        enc = tok.encode(x, criterion=criterion)  # (a KARL model: its own count at the desired L1)
        # met: false where no iteration met the criterion and the lowest-error fallback was kept
        out += [{"tokens": n, "l1": l1, "psnr": p, "met": criterion.reached(n, l1, p)}
                for n, l1, p in zip(enc.num_tokens, enc.l1, enc.psnr)]
    return out


def compression(rec: Record, selected: int) -> list[dict]:
    """The selected tokens' bits (ALIT's or KARL's) against JPEG and WebP files of the nearest size."""
    nbytes = rec.tokens[selected] * rec.bits_per_token / 8
    rows = [{"codec": f"{rec.family.upper()} ({rec.tokens[selected]} tokens)", "bytes": nbytes,
             "psnr": rec.psnr[selected]}]
    for fmt, name in (("JPEG", "JPEG"), ("WEBP", "WebP")):  # (Pillow's format names; the plot's labels)
        size, quality = alit_core.codec_at_size(rec.image, fmt, nbytes)
        rows.append({"codec": f"{name} at nearest size", "bytes": float(size), "psnr": quality})
    return rows


# --- exports -------------------------------------------------------------------------------------
def export_json(rec: Record, selected: int, path: Path, about: dict) -> Path:
    """The run's numbers, with `about` (the model and settings that made it) and, for a quantized model, the
    latent codes of each iteration."""
    data = {**about, **rec.summary(selected)}
    if any(c is not None for c in rec.codes):
        data["codes"] = [None if c is None else c.tolist() for c in rec.codes]
    else:
        data["codes"] = "none: this model's latents are continuous (no codebook indices)"
    path.write_text(json.dumps(data, indent=2))
    return path


def export_npz(rec: Record, selected: int, path: Path) -> Path:
    codes = {f"codes_{t}": c for t, c in enumerate(rec.codes) if c is not None}
    halts = {f"halt_mask_{t}": h for t, h in enumerate(rec.halt) if h is not None}
    extra = {"budgets": np.array(rec.budgets), "quality": np.array(rec.quality)} if rec.karl else {}
    np.savez_compressed(path, **extra, image=rec.image, recons=np.stack(rec.recons), tokens=np.array(rec.tokens),
                        l1=np.array(rec.l1), psnr=np.array(rec.psnr), selected=np.array(selected), **codes, **halts)
    return path


def export_pngs(rec: Record, path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for t, r in enumerate(rec.recons):
            buf = io.BytesIO()
            Image.fromarray(r).save(buf, format="PNG")
            z.writestr(f"{rec.step_name(t).replace(' ', '_')}_{rec.tokens[t]}_tokens.png", buf.getvalue())
    return path


def export_gif(rec: Record, selected: int, path: Path, ms_per_frame: int = 700) -> Path:
    """Original, then every iteration (KARL: every pass), captioned; for slides."""
    frames = [figures.caption(rec.image, "original")]
    for t, r in enumerate(rec.recons):
        mark = "  (selected)" if t == selected else ""
        where = f"budget {rec.budgets[t]}: " if rec.karl else ""
        frames.append(figures.caption(r, f"{where}{rec.tokens[t]} tokens  PSNR {rec.psnr[t]:.1f} dB{mark}"))
    imgs = [Image.fromarray(f) for f in frames]
    imgs[0].save(path, save_all=True, append_images=imgs[1:], duration=ms_per_frame, loop=0)
    return path
