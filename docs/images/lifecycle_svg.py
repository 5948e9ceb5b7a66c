"""Draw the lifecycle diagram of docs/lifecycle.md (and its Korean twin) as SVG.

The SVGs are committed, so the docs build needs nothing; run this after changing a label:

    python docs/images/lifecycle_svg.py

The drawing is 340 units wide, so that on a phone (about 360 px) it is shown at its own size
and its text stays readable.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

HERE = Path(__file__).resolve().parent

LABELS = {
    "en": {
        "title": "The states of a loop",
        "start": "start() / run()",
        "before_loop": ("before_loop", "your hook, if any"),
        "returned_1": ("returned:", "schedule starts"),
        "iterate": ("iterate", "your body"),
        "backoff": ("backoff", "random delay"),
        "error": "error",
        "retry": "retry",
        "returned_2": ("returned:", "current_loop += 1"),
        "otherwise": "otherwise",
        "count": ("count reached,", "or stop()"),
        "sleep": ("sleep", "until it's due"),
        "due": "due",
        "stop": "stop()",
        "after_loop": ("after_loop", "your hook; runs however it ended"),
        "ended": "ended",
        "restart": ("restart():", "before_loop again"),
    },
    "ko": {
        "title": "루프의 상태",
        "start": "start() / run()",
        "before_loop": ("before_loop", "등록한 훅(있다면)"),
        "returned_1": ("반환되면:", "일정 시작"),
        "iterate": ("iterate", "본문"),
        "backoff": ("backoff", "무작위 지연"),
        "error": "오류",
        "retry": "재시도",
        "returned_2": ("반환되면:", "current_loop += 1"),
        "otherwise": "그 밖에",
        "count": ("count 도달", "또는 stop()"),
        "sleep": ("sleep", "예정 시각까지"),
        "due": "예정 시각",
        "stop": "stop()",
        "after_loop": ("after_loop", "등록한 훅, 어떻게 끝나든 실행"),
        "ended": "끝",
        "restart": ("restart()면", "before_loop부터 다시"),
    },
}

STATE_FILL = "#eef3fb"
HOOK_FILL = "#fdf1dc"
INK = "#222"
NOTE = "#555"


def _text(x: float, y: float, s: str, *, cls: str = "", anchor: str = "middle") -> str:
    c = f' class="{cls}"' if cls else ""
    return f'<text x="{x}" y="{y}" text-anchor="{anchor}"{c}>{escape(s)}</text>'


def _box(x: float, y: float, w: float, h: float, name: str, note: str, fill: str) -> str:
    cx = x + w / 2
    return "\n".join(
        [
            f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="6" fill="{fill}" '
            f'stroke="{INK}" stroke-width="1.2"/>',
            _text(cx, y + 17, name, cls="name"),
            _text(cx, y + 33, note, cls="note"),
        ]
    )


def _arrow(*points: tuple[float, float]) -> str:
    d = " ".join(f"{'M' if i == 0 else 'L'}{x},{y}" for i, (x, y) in enumerate(points))
    return f'<path d="{d}" fill="none" stroke="{INK}" stroke-width="1.2" marker-end="url(#a)"/>'


def svg(lang: str) -> str:
    t = LABELS[lang]
    parts = [
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 340 480" width="340" '
        f'height="480" role="img" aria-label="{escape(t["title"])}">',
        f"<title>{escape(t['title'])}</title>",
        "<defs>",
        '<marker id="a" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{INK}"/></marker>',
        "<style>",
        f"text {{ font-family: sans-serif; font-size: 12px; fill: {INK}; }}",
        ".name { font-family: monospace; font-size: 14px; font-weight: bold; }",
        f".note {{ font-size: 11.5px; fill: {NOTE}; }}",
        ".code { font-family: monospace; }",
        "</style>",
        "</defs>",
        # An opaque background, so the diagram stays legible on the dark theme.
        '<rect x="0" y="0" width="340" height="480" rx="8" fill="#fff"/>',
        _text(100, 18, t["start"], cls="code"),
        _arrow((100, 23), (100, 44)),
        _box(30, 44, 140, 42, *t["before_loop"], HOOK_FILL),
        _arrow((100, 86), (100, 140)),
        _text(108, 108, t["returned_1"][0], anchor="start"),
        _text(108, 122, t["returned_1"][1], anchor="start"),
        _box(30, 140, 140, 42, *t["iterate"], STATE_FILL),
        _box(238, 140, 96, 42, *t["backoff"], STATE_FILL),
        _arrow((170, 151), (238, 151)),
        _text(204, 146, t["error"]),
        _arrow((238, 171), (170, 171)),
        _text(204, 194, t["retry"]),
        # The body returned: on to sleep, or out when the loop is done.
        _arrow((100, 182), (100, 250)),
        _text(108, 200, t["returned_2"][0], anchor="start"),
        _text(108, 214, t["returned_2"][1], anchor="start", cls="code"),
        f'<circle cx="100" cy="226" r="2.5" fill="{INK}"/>',
        _text(94, 242, t["otherwise"], anchor="end"),
        _arrow((100, 226), (300, 226), (300, 370)),
        _text(292, 268, t["count"][0], anchor="end"),
        _text(292, 282, t["count"][1], anchor="end", cls="code"),
        _box(30, 250, 140, 42, *t["sleep"], STATE_FILL),
        _arrow((30, 271), (12, 271), (12, 161), (30, 161)),
        _text(18, 216, t["due"], anchor="start"),
        _arrow((100, 292), (100, 370)),
        _text(108, 336, t["stop"], anchor="start", cls="code"),
        _box(30, 370, 300, 42, *t["after_loop"], HOOK_FILL),
        _arrow((100, 412), (100, 440)),
        _text(100, 456, t["ended"]),
        _arrow((260, 412), (260, 440)),
        _text(260, 456, t["restart"][0], cls="code"),
        _text(260, 471, t["restart"][1]),
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    for lang, name in (("en", "lifecycle.svg"), ("ko", "lifecycle.ko.svg")):
        (HERE / name).write_text(svg(lang), encoding="utf-8")
        print(HERE / name)
