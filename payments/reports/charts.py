"""Charts as inline SVG, rendered on the server: no script, no CDN, no network. Every
value is escaped (format_html), each mark carries a <title> (the browser's tooltip),
and each chart comes with its numbers as a table for screen readers and copying."""

import math

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 760, 220
LEFT, RIGHT, TOP, BOTTOM = 84, 12, 14, 38
BAR = "#417690"
LINE = "#2f8f4e"
FAIL = "#ba2121"


def nice_ticks(max_value: float, count: int = 4) -> list[float]:
    """Round axis ticks from 0 that reach max_value: steps of 1, 2, 2.5 or 5 times a power
    of ten, so a reader sees 0, 50, 100, 150, 200 rather than 54.31, 108.62…"""
    if max_value <= 0:
        return [0.0, 1.0]
    raw = max_value / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(math.ceil(max_value / step - 1e-9) + 1)]


def _axis(ticks: list[float], fmt) -> SafeString:
    """A grid line with its label at each tick, from 0 to the last tick (the top)."""
    plot_h = HEIGHT - TOP - BOTTOM
    top = ticks[-1] or 1
    lines = []
    for tick in ticks:
        y = TOP + plot_h - plot_h * tick / top
        lines.append(
            format_html(
                '<line x1="{}" x2="{}" y1="{y}" y2="{y}" stroke="#ddd"/>'
                '<text x="{}" y="{}" text-anchor="end" font-size="12" fill="#555">{}</text>',
                LEFT,
                WIDTH - RIGHT,
                LEFT - 6,
                round(y + 4, 1),
                fmt(tick),
                y=round(y, 1),
            )
        )
    return mark_safe("".join(lines))  # noqa: S308 - each piece built by format_html


def _x_labels(labels: list[str], step_px: float) -> SafeString:
    every = max(1, int(60 // max(step_px, 1)) + 1)
    return format_html_join(
        "",
        '<text x="{}" y="{}" text-anchor="middle" font-size="12" fill="#555">{}</text>',
        (
            (round(LEFT + step_px * (i + 0.5), 1), HEIGHT - BOTTOM + 16, label)
            for i, label in enumerate(labels)
            if i % every == 0
        ),
    )


def _svg(title: str, body: SafeString, height: int = HEIGHT) -> SafeString:
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="100%" role="img" '
        'aria-label="{t}" class="chart" font-family="sans-serif"><title>{t}</title>{b}</svg>',
        w=WIDTH,
        h=height,
        t=title,
        b=body,
    )


def bar_chart(points: list[tuple[str, float, str]], *, title: str, fmt=str) -> SafeString:
    """Vertical bars: (label, value, tooltip) per bar, e.g. a day's volume; `fmt` labels
    the axis ticks (with the currency)."""
    if not points:
        return format_html("<p>{}</p>", "No data.")
    ticks = nice_ticks(max(v for _, v, _ in points))
    top = ticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / len(points)
    bars = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" fill="' + BAR + '"><title>{}</title></rect>',
        (
            (
                round(LEFT + step * i + step * 0.1, 1),
                round(TOP + plot_h - plot_h * v / top, 1),
                round(step * 0.8, 1),
                round(plot_h * v / top, 1),
                tip,
            )
            for i, (_, v, tip) in enumerate(points)
        ),
    )
    labels = _x_labels([label for label, _, _ in points], step)
    return _svg(title, format_html("{}{}{}", _axis(ticks, fmt), bars, labels))


def line_chart(points: list[tuple[str, float | None, str]], *, title: str) -> SafeString:
    """A 0–100 % line (success rate per day); days without a value break the line."""
    if not points:
        return format_html("<p>{}</p>", "No data.")
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / len(points)
    segments, current, dots = [], [], []
    for i, (_, value, tip) in enumerate(points):
        if value is None:
            if current:
                segments.append(current)
            current = []
            continue
        x, y = round(LEFT + step * (i + 0.5), 1), round(TOP + plot_h - plot_h * value, 1)
        current.append(f"{x},{y}")
        dots.append((x, y, tip))
    if current:
        segments.append(current)
    lines = format_html_join(
        "",
        '<polyline points="{}" fill="none" stroke="' + LINE + '" stroke-width="2"/>',
        ((" ".join(s),) for s in segments),
    )
    marks = format_html_join("", '<circle cx="{}" cy="{}" r="3" fill="' + LINE + '"><title>{}</title></circle>', dots)
    axis = _axis([0, 0.25, 0.5, 0.75, 1], lambda v: f"{v:.0%}")
    return _svg(title, format_html("{}{}{}{}", axis, lines, marks, _x_labels([p[0] for p in points], step)))


def hbar_chart(items: list[tuple[str, int]], *, title: str, color: str = FAIL) -> SafeString:
    """Horizontal bars with their counts: failures by reason, open exceptions by reason."""
    if not items:
        return format_html("<p>{}</p>", "None.")
    top = max(n for _, n in items) or 1
    label_w, row_h = 250, 30
    height = TOP + row_h * len(items) + 8
    rows = format_html_join(
        "",
        '<text x="{}" y="{}" text-anchor="end" font-size="15">{}</text>'
        '<rect x="{}" y="{}" width="{}" height="20" fill="' + color + '"><title>{}: {}</title></rect>'
        '<text x="{}" y="{}" font-size="15">{}</text>',
        (
            (
                label_w - 8,
                TOP + row_h * i + 15,
                label,
                label_w,
                TOP + row_h * i,
                round((WIDTH - label_w - 60) * n / top, 1),
                label,
                n,
                round(label_w + (WIDTH - label_w - 60) * n / top + 6, 1),
                TOP + row_h * i + 15,
                n,
            )
            for i, (label, n) in enumerate(items)
        ),
    )
    return _svg(title, rows, height=height)


def data_table(headers: list[str], rows: list[tuple]) -> SafeString:
    head = format_html_join("", "<th>{}</th>", ((h,) for h in headers))
    body = format_html_join(
        "", "<tr>{}</tr>", ((format_html_join("", "<td>{}</td>", ((v,) for v in row)),) for row in rows)
    )
    return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, body)
