"""A progress line for long runs: images done, rate and ETA."""

from __future__ import annotations

import math
import sys
import time


class Progress:
    """images done / total, rate and ETA on stderr: redrawn in place on a terminal, a line every
    `log_every` seconds otherwise (logs of long runs stay short)."""

    def __init__(self, total: int, label: str, enabled: bool = True, log_every: float = 30.0):
        self.total, self.label, self.enabled = total, label, enabled
        self.done = self.bad = 0
        self.start = self.last = time.monotonic()
        self.tty = sys.stderr.isatty()
        self.interval = 0.5 if self.tty else log_every

    def update(self, done: int, bad: int) -> None:
        self.done += done
        self.bad += bad
        now = time.monotonic()
        if self.enabled and (now - self.last >= self.interval or self.done >= self.total):
            self.last = now
            self._draw(now)

    def line(self, now: float | None = None) -> str:
        elapsed = (now or time.monotonic()) - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        pct = 100 * self.done / self.total if self.total else 100.0
        bad = f", {self.bad} bad" if self.bad else ""
        return (f"{self.label}{self.done}/{self.total} images ({pct:.1f}%), {rate:.1f} images/s, "
                f"elapsed {_clock(elapsed)}, ETA {_clock(eta)}{bad}")

    def _draw(self, now: float) -> None:
        sys.stderr.write(("\r" + self.line(now) + "\x1b[K") if self.tty else self.line(now) + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.tty and self.done:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
