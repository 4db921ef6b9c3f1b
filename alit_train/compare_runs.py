"""Two training runs' per-iteration code accuracy at equal steps, as a Markdown table.

    python -m alit_train.compare_runs docs/model_report/v2_phase1/metrics.jsonl runs/c128/metrics.jsonl --window 200

Why: a recipe change (e.g. a capacity limit from the first step) is judged against the run it replaces at
the same number of steps, not against that run's end; a run's accuracy at step 2,000 says little on its own.
Each cell is the mean of the logged training steps in the window (steps are the runs' own: the first phase
of a merged log, i.e. rows without a "phase", unless --phase names another).
"""

from __future__ import annotations

import argparse
import math

from .training_state import read_log


def window_means(rows: list[dict], window: int, phase: str | None = None) -> dict[int, list[float]]:
    """{first step of the window: [mean acc_0, ..., mean acc_{T-1}]} over the logged training rows."""
    sums: dict[int, dict[int, list[float]]] = {}
    for r in rows:
        if r.get("phase") != phase or "loss" not in r:
            continue
        start = (r["step"] - 1) // window * window
        for key, value in r.items():
            if key.startswith("acc_") and key[4:].isdigit() and value is not None:
                sums.setdefault(start, {}).setdefault(int(key[4:]), []).append(float(value))
    return {start: [sum(v) / len(v) if (v := by_it.get(t)) else math.nan for t in range(max(by_it) + 1)]
            for start, by_it in sorted(sums.items())}


def table(a: dict[int, list[float]], b: dict[int, list[float]], names: tuple[str, str], window: int) -> str:
    lines = [f"| steps | {names[0]}: accuracy at iterations 0, 1, ... | {names[1]} |", "|---|---|---|"]
    fmt = lambda accs: ", ".join("-" if math.isnan(x) else f"{x:.3f}" for x in accs)  # noqa: E731
    for start in sorted(set(a) & set(b)):
        lines.append(f"| {start + 1}-{start + window} | {fmt(a[start])} | {fmt(b[start])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("log_a")
    p.add_argument("log_b")
    p.add_argument("--window", type=int, default=200)
    p.add_argument("--phase-a", help="the phase of log A to read (default: its first, unnamed one)")
    p.add_argument("--phase-b", help="the phase of log B to read")
    args = p.parse_args(argv)
    a = window_means(read_log(args.log_a), args.window, args.phase_a)
    b = window_means(read_log(args.log_b), args.window, args.phase_b)
    print(table(a, b, ("A", "B"), args.window))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
