"""What a visitor is told when a request cannot be done: `Refused` carries the reason, and each tab's
status line shows it (kept until the next action) above the notes about the image."""

from __future__ import annotations

from html import escape


class Refused(Exception):
    """What the visitor asked for cannot be done; the message says why, for the status line."""


def sentences(*parts: str) -> str:
    """Messages joined as sentences: each ends with a full stop (an error from the library may not)."""
    return " ".join(p if p.endswith((".", "!", "?")) else f"{p}." for p in parts if p)


def status_md(error: str | None = None, notes: list[str] | tuple = (), left_out: list[str] | tuple = ()) -> str:
    """The status line: an error (kept until the next action); what a request that went through left out
    (files skipped, in a warning colour, not the error's); then the notes about the image; else nothing."""
    lines = []
    if error:
        lines.append(f"<div class='alit-status-error'>⚠️ {escape(error, quote=False)}</div>")
    lines += [f"<div class='alit-status-warning'>⏭️ {escape(w, quote=False)}</div>" for w in left_out]
    lines += [f"<div class='alit-status-note'>ℹ️ {escape(n, quote=False)}</div>" for n in notes]
    return "\n".join(lines)
