"""Samples of interleaved runs, and the tables printed from them."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(slots=True)
class Series:
    """The samples of one contender on one row (higher is better unless ``lower_better``)."""

    row: str
    contender: str
    unit: str
    samples: list[float] = field(default_factory=list)
    note: str = ""  # why there are no samples (skipped, failed), printed instead of numbers

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None


def fmt(value: float | None, unit: str = "") -> str:
    """A number for the table: thousands separated, few digits, ``-`` when missing."""
    if value is None:
        return "-"
    if unit == "ms" or abs(value) < 10:
        text = f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    else:
        text = f"{value:,.0f}"
    return text


def ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "-"
    return f"{value / base:.2f}x"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A Markdown table (it reads well in a terminal and pastes into the docs as is)."""
    rows = [list(map(str, row)) for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in
              enumerate(headers)]  # fmt: skip
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
              for r in rows]  # fmt: skip
    return "\n".join(lines)


def throughput_table(series: Sequence[Series], *, baselines: Sequence[str]) -> str:
    """Rows of medians, min-max and ratios of each contender to each baseline of its row."""
    by_row: dict[str, list[Series]] = {}
    for s in series:
        by_row.setdefault(s.row, []).append(s)
    out = []
    for row, contenders in by_row.items():
        medians = {s.contender: s.median for s in contenders}
        for s in contenders:
            if not s.samples:
                out.append(
                    [row, s.contender, s.note or "no samples", "", "", *("" for _ in baselines)]
                )
                continue
            spread = f"{fmt(min(s.samples), s.unit)}-{fmt(max(s.samples), s.unit)}"
            out.append([
                row, s.contender, f"{fmt(s.median, s.unit)} {s.unit}", spread, str(len(s.samples)),
                *(ratio(s.median, medians.get(b)) for b in baselines),
            ])  # fmt: skip
    headers = ["work", "contender", "median", "min-max", "runs", *(f"vs {b}" for b in baselines)]
    return table(headers, out)
