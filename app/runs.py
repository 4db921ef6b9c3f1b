"""What a visitor's session keeps between events: an Explore `Run` and a Compare `Comparison` (both also
what a shared link restores)."""

from __future__ import annotations

from dataclasses import dataclass, field

from alit_core import Criterion

from . import figures
from .explorer import Record
from .files import Pictures


@dataclass
class Run:
    """One Explore run as the page keeps it: the rollout, the pictures already written for it, what
    the model records about itself, and the notes about the image."""

    rec: Record
    pictures: Pictures
    model: str
    discovery: dict | None  # texts.object_discovery of the model's metadata
    model_iterations: int  # the model's, which a run may stop short of
    notes: list[str] = field(default_factory=list)
    done: bool = False
    inputs: dict = field(default_factory=dict)  # the image and EXPLORE_SETTINGS it was run with (Share)
    token_top: int | None = None  # the Attention token slider's maximum as last sent (choices.token_slider)
    criterion: Criterion | None = None  # what the shown selection was made by (a refused value leaves it)
    shown: int | None = None  # the iteration the panel above the gallery shows (None: the last one computed)

    def picture(self, name: str, make) -> str:
        return self.pictures.get(name, make)

    def recon(self, t: int) -> str:
        """Iteration t's reconstruction, at the display size."""
        return self.picture(f"recon_{t}", lambda: figures.enlarge(self.rec.recons[t]))

    def overlay(self, t: int, k: int, head, opacity: float) -> str:
        """Token k's attention at iteration t over the image (a fresh picture: it follows the controls)."""
        maps = self.rec.attention(t, head)
        return self.pictures.fresh(f"attention_{t}_{k}", figures.heat_overlay(self.rec.image, maps[k], float(opacity)))


@dataclass
class Comparison:
    """Two finished runs as the Compare tab keeps them: A and B (the same Run when one rollout serves
    both), each with its criterion, selection and halting, for the shared iteration slider."""

    runs: tuple[Run, Run]
    crits: tuple[Criterion, Criterion]
    selected: tuple[int, int]
    halting: tuple[str, str]
    notes: list[str] = field(default_factory=list)
    inputs: dict = field(default_factory=dict)  # COMPARE_INPUTS by name (Share)
    token_top: int | None = None  # the shared token slider's maximum as last sent (choices.token_slider)

    @property
    def mixed(self) -> bool:
        """ALIT against KARL: the slider follows ALIT's iterations."""
        return self.runs[0].rec.karl != self.runs[1].rec.karl

    @property
    def step_label(self) -> str:
        """The shared slider's label: what it moves through for these two runs."""
        if self.mixed:
            alit = next(lab for lab, run in zip("AB", self.runs) if not run.rec.karl)
            return f"Iteration of {alit} (the KARL side shows its pass nearest that count)"
        return "Pass (both runs)" if self.runs[0].rec.karl else "Iteration (both runs)"

    @property
    def iterations(self) -> int:
        if self.mixed:
            return next(len(r.rec.tokens) for r in self.runs if not r.rec.karl)
        return max(len(r.rec.tokens) for r in self.runs)

    def at(self, t: int) -> tuple[int, int]:
        """Each run's iteration at the shared iteration t (a shorter run stays on its last). ALIT against
        KARL: ALIT's iteration t and KARL's pass whose estimated count is nearest its tokens (equal
        token counts where KARL has one)."""
        ts = [min(t, len(r.rec.tokens) - 1) for r in self.runs]
        if self.mixed:
            alit, karl = (0, 1) if self.runs[1].rec.karl else (1, 0)
            n, counts = self.runs[alit].rec.tokens[ts[alit]], self.runs[karl].rec.tokens
            ts[karl] = min(range(len(counts)), key=lambda i: (abs(counts[i] - n), i))
        return tuple(ts)
