"""Tiny server-rendered SVG charts (no JavaScript, no CDN). Only numbers go into the markup."""

from django.utils.html import format_html, format_html_join


def bars(values, *, width=240, height=36, color="#417690", second=None, second_color="#ba2121", title=""):
    """A bar per value (e.g. per hour); `second` stacks a second series on top (e.g. failures)."""
    n = max(len(values), 1)
    peak = max((v + (second[i] if second else 0) for i, v in enumerate(values)), default=0) or 1
    step = width / n
    rects = []
    for i, v in enumerate(values):
        h1 = height * v / peak
        rects.append((round(i * step + 0.5, 2), round(height - h1, 2), round(step - 1, 2), round(h1, 2), color, v))
        if second and second[i]:
            h2 = height * second[i] / peak
            rects.append(
                (
                    round(i * step + 0.5, 2),
                    round(height - h1 - h2, 2),
                    round(step - 1, 2),
                    round(h2, 2),
                    second_color,
                    second[i],
                )
            )
    body = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>',
        rects,
    )
    return format_html(
        '<svg class="ops-chart" role="img" aria-label="{}" width="{}" height="{}" viewBox="0 0 {} {}">'
        '<line x1="0" y1="{}" x2="{}" y2="{}" stroke="#ccc"/>{}</svg>',
        title,
        width,
        height,
        width,
        height,
        height - 0.5,
        width,
        height - 0.5,
        body,
    )


def gauge(percent, *, width=120, height=12):
    """A horizontal bar for a percentage (None: no data)."""
    if percent is None:
        return format_html('<span class="ops-muted">{}</span>', "no data")
    fill = "#2e7d32" if percent >= 95 else "#ef6c00" if percent >= 80 else "#c62828"
    return format_html(
        '<svg class="ops-gauge" width="{}" height="{}" role="img" aria-label="{}%">'
        '<rect width="{}" height="{}" fill="#eee"/><rect width="{}" height="{}" fill="{}"/></svg>',
        width,
        height,
        round(percent, 1),
        width,
        height,
        round(width * percent / 100, 2),
        height,
        fill,
    )
