"""Render the dashboard's panels from a real Prometheus into one SVG, without Grafana.

    python contrib/grafana/render_preview.py http://127.0.0.1:9090 preview.svg [MINUTES]

Each panel's queries run as range queries over the last MINUTES (default 10) and are drawn
as lines, one small chart per panel, in the dashboard's order, with every variable (job,
instance, check) at "All". Standard library only: it is a preview for the docs, not a
Grafana replacement.
"""

from __future__ import annotations

import json
import math
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any

DASHBOARD = Path(__file__).with_name("aiohttp-booster.json")
COLUMNS, CELL_W, CELL_H, PAD = 3, 360, 190, 34
LEGEND = 6  # legend entries shown per panel (every series is drawn)
COLOURS = ("#3274d9", "#56a64b", "#e02f44", "#ff9830", "#a352cc", "#1f9d9d", "#8f8f8f")


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """The dashboard's panels that have queries (rows left out), in order."""
    return [panel for panel in dashboard["panels"] if panel.get("targets")]


def variables(dashboard: dict[str, Any]) -> dict[str, str]:
    """The dashboard's query variables at "All": each name and its ``allValue`` (``.*``)."""
    return {
        variable["name"]: variable.get("allValue") or ".*"
        for variable in dashboard.get("templating", {}).get("list", [])
        if variable.get("type") == "query"
    }


def filled(expr: str, values: Mapping[str, str]) -> str:
    """``expr`` with Grafana's ``$name`` and ``${name}`` variables replaced by ``values``
    (``__rate_interval`` among them); the longest names first, so ``$instance`` never
    becomes ``$inst`` + ``ance``."""
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace("${" + name + "}", values[name]).replace("$" + name, values[name])
    return expr


def range_query(server: str, expr: str, start: float, end: float, step: float) -> list[Any]:
    """The matrix Prometheus answers for ``expr`` between ``start`` and ``end``."""
    params = urllib.parse.urlencode(
        {"query": expr, "start": start, "end": end, "step": f"{step:g}"}  # float seconds
    )
    with urllib.request.urlopen(f"{server}/api/v1/query_range?{params}", timeout=30) as answer:  # noqa: S310 - a URL the caller gave
        body = json.load(answer)
    if body.get("status") != "success":
        raise RuntimeError(f"{expr}: {body.get('error')}")
    result: list[Any] = body["data"]["result"]
    return result


def legend(template: str, labels: dict[str, str]) -> str:
    """A Grafana legend format (``{{queue}} {{result}}``) filled from ``labels``."""
    text = template
    for name, value in labels.items():
        text = text.replace("{{" + name + "}}", value)
    return text or "value"


def legend_entry(index: int, text: str, colour: str, x: float, y: float) -> str:
    """The ``index``-th legend entry of the panel at (x, y): two columns under the chart."""
    row, col = divmod(index, 2)
    return (f'<text x="{x + 10 + col * (CELL_W // 2)}" y="{y + CELL_H - 30 + row * 11}" '
            f'fill="{colour}" font-size="9">{text}</text>')  # fmt: skip


def chart(panel: dict[str, Any], series: list[tuple[str, list[tuple[float, float]]]],
          x: float, y: float, start: float, end: float) -> str:  # fmt: skip
    """One panel as an SVG group at (x, y)."""
    left, top, width, height = x + 8, y + 22, CELL_W - 16, CELL_H - 62
    values = [v for _, points in series for _, v in points if math.isfinite(v)]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    low = min(low, 0.0)
    high = high if high > low else low + 1.0
    parts = [
        f'<rect x="{x + 2}" y="{y + 2}" width="{CELL_W - 4}" height="{CELL_H - 4}" rx="4" '
        'fill="#181b1f" stroke="#2c3235"/>',
        f'<text x="{x + 10}" y="{y + 16}" fill="#ccccdc" font-size="11" '
        f'font-weight="bold">{escape(panel["title"])}</text>',
        f'<text x="{left}" y="{top + 8}" fill="#8e8e8e" font-size="9">{high:.3g}</text>',
        f'<text x="{left}" y="{top + height}" fill="#8e8e8e" font-size="9">{low:.3g}</text>',
    ]
    named = LEGEND if len(series) <= LEGEND else LEGEND - 1
    for index, (name, points) in enumerate(series):
        colour = COLOURS[index % len(COLOURS)]
        coords = " ".join(
            f"{left + (t - start) / (end - start) * width:.1f},"
            f"{top + height - (v - low) / (high - low) * height:.1f}"
            for t, v in points
            if math.isfinite(v)
        )
        if coords:
            parts.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" '
                         'stroke-width="1.5"/>')  # fmt: skip
        if index < named:
            parts.append(legend_entry(index, escape(name[:40]), colour, x, y))
    if len(series) > named:
        parts.append(legend_entry(named, f"and {len(series) - named} more", "#8e8e8e", x, y))
    if not values:
        parts.append(f'<text x="{left + width / 2 - 20}" y="{top + height / 2}" '
                     'fill="#8e8e8e" font-size="10">no data</text>')  # fmt: skip
    return "\n".join(parts)


def render(server: str, minutes: float = 10.0, dashboard_path: Path = DASHBOARD) -> str:
    """The SVG of every panel of the dashboard, from ``server``'s last ``minutes``."""
    dashboard = json.loads(dashboard_path.read_text())
    end = time.time()
    start = end - minutes * 60
    step = max(1.0, minutes * 60 / 120)
    # a PromQL duration takes whole seconds only: "8.5s" is refused
    values = {**variables(dashboard), "__rate_interval": f"{math.ceil(max(4 * step, 15))}s"}
    shown = panels(dashboard)
    rows = math.ceil(len(shown) / COLUMNS)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{COLUMNS * CELL_W}" '
        f'height="{rows * CELL_H + PAD}" font-family="sans-serif">',
        '<rect width="100%" height="100%" fill="#111217"/>',
        f'<text x="10" y="22" fill="#ccccdc" font-size="14">{escape(dashboard["title"])} '
        f"(last {round(minutes, 1):g} minutes)</text>",
    ]
    for index, panel in enumerate(shown):
        series: list[tuple[str, list[tuple[float, float]]]] = []
        for target in panel["targets"]:
            expr = filled(target["expr"], values)
            for item in range_query(server, expr, start, end, step):
                points = [(float(t), float(v)) for t, v in item["values"]]
                series.append((legend(target.get("legendFormat", ""), item["metric"]), points))
        if panel["type"] == "state-timeline":  # the worst state first: a down replica shows
            series.sort(key=lambda item: min((v for _, v in item[1]), default=1.0))
        elif len(series) > LEGEND:  # more than the legend holds: the busiest ones named
            series.sort(key=lambda item: -max((v for _, v in item[1]), default=0.0))
        row, col = divmod(index, COLUMNS)
        out.append(chart(panel, series, col * CELL_W, PAD + row * CELL_H, start, end))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    minutes = float(argv[2]) if len(argv) == 3 else 10.0
    Path(argv[1]).write_text(render(argv[0], minutes))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
