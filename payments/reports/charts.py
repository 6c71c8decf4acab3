"""Charts as inline SVG, rendered on the server: no script, no CDN, no network. Every
value is escaped (format_html), each mark carries a <title> (the browser's tooltip),
and each chart comes with its numbers as a table for screen readers and copying."""

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 760, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 14, 38
BAR = "#417690"
LINE = "#2f8f4e"
FAIL = "#ba2121"


def _axis(max_value: float, fmt) -> SafeString:
    """Four horizontal grid lines with labels, from 0 to max_value."""
    plot_h = HEIGHT - TOP - BOTTOM
    lines = []
    for i in range(5):
        y = TOP + plot_h - plot_h * i / 4
        lines.append(
            format_html(
                '<line x1="{}" x2="{}" y1="{y}" y2="{y}" stroke="#ddd"/>'
                '<text x="{}" y="{}" text-anchor="end" font-size="11" fill="#666">{}</text>',
                LEFT,
                WIDTH - RIGHT,
                LEFT - 6,
                round(y + 4, 1),
                fmt(max_value * i / 4),
                y=round(y, 1),
            )
        )
    return mark_safe("".join(lines))  # noqa: S308 - each piece built by format_html


def _x_labels(labels: list[str], step_px: float) -> SafeString:
    every = max(1, int(60 // max(step_px, 1)) + 1)
    return format_html_join(
        "",
        '<text x="{}" y="{}" text-anchor="middle" font-size="11" fill="#666">{}</text>',
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
    """Vertical bars: (label, value, tooltip) per bar, e.g. a day's volume."""
    if not points:
        return format_html("<p>{}</p>", "No data.")
    top = max(v for _, v, _ in points) or 1
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
    return _svg(title, format_html("{}{}{}", _axis(top, fmt), bars, labels))


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
    axis = _axis(1, lambda v: f"{v:.0%}")
    return _svg(title, format_html("{}{}{}{}", axis, lines, marks, _x_labels([p[0] for p in points], step)))


def hbar_chart(items: list[tuple[str, int]], *, title: str, color: str = FAIL) -> SafeString:
    """Horizontal bars with their counts: failures by reason, open exceptions by reason."""
    if not items:
        return format_html("<p>{}</p>", "None.")
    top = max(n for _, n in items) or 1
    label_w, row_h = 210, 24
    height = TOP + row_h * len(items) + 8
    rows = format_html_join(
        "",
        '<text x="{}" y="{}" text-anchor="end" font-size="12">{}</text>'
        '<rect x="{}" y="{}" width="{}" height="16" fill="' + color + '"><title>{}: {}</title></rect>'
        '<text x="{}" y="{}" font-size="12">{}</text>',
        (
            (
                label_w - 8,
                TOP + row_h * i + 12,
                label,
                label_w,
                TOP + row_h * i,
                round((WIDTH - label_w - 60) * n / top, 1),
                label,
                n,
                round(label_w + (WIDTH - label_w - 60) * n / top + 6, 1),
                TOP + row_h * i + 12,
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
