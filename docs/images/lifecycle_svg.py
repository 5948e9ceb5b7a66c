"""Draw the lifecycle diagram of docs/lifecycle.md (and its Korean twin) as SVG.

The boxes are the members of :class:`anytasks.LoopState`; the arrows are the main moves of
``anytasks._state.TRANSITIONS`` (the page's table lists the rest). The SVGs are committed, so the
docs build needs nothing; run this after changing a label or a state:

    python docs/images/lifecycle_svg.py

The drawing is 340 units wide, so that on a phone (about 360 px) it is shown at its own size
and its text stays readable.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

HERE = Path(__file__).resolve().parent

WIDTH = 340
HEIGHT = 548

LABELS = {
    "en": {
        "title": "The states of a loop (anytasks.LoopState)",
        "idle": "not running",
        "start": "start() / run()",
        "starting": "before_loop",
        "returned": "returned",
        "running": "your body",
        "backing_off": "random delay",
        "handled": "error",
        "retry": "retry",
        "waiting": "for the next slot",
        "paused": "slots skipped",
        "pause": "pause()",
        "resume": "resume()",
        "due": "due",
        "run": "a run",
        "stop": "stop()",
        "cancel": "cancel()",
        "error": "error",
        "stopping": "body ends",
        "cancelling": "cancelled",
        "failing": "error hook",
        "finishing": "after_loop; also after the last run",
        "ended": "ended:",
        "restart": ("restart():", "STARTING again"),
    },
    "ko": {
        "title": "루프의 상태 (anytasks.LoopState)",
        "idle": "실행 중이 아님",
        "start": "start() / run()",
        "starting": "before_loop",
        "returned": "반환되면",
        "running": "본문",
        "backing_off": "무작위 지연",
        "handled": "오류",
        "retry": "재시도",
        "waiting": "다음 슬롯까지",
        "paused": "슬롯을 건너뜀",
        "pause": "pause()",
        "resume": "resume()",
        "due": "때가 됨",
        "run": "실행 한 번",
        "stop": "stop()",
        "cancel": "cancel()",
        "error": "오류",
        "stopping": "본문이 끝나면",
        "cancelling": "취소되는 중",
        "failing": "error 훅",
        "finishing": "after_loop; 마지막 반복 뒤에도",
        "ended": "끝:",
        "restart": ("restart()면", "STARTING부터 다시"),
    },
}

IDLE_FILL = "#f0f0f0"
STATE_FILL = "#eef3fb"
HOOK_FILL = "#fdf1dc"
ENDING_FILL = "#fbe9e9"
INK = "#222"
NOTE = "#555"


def _text(x: float, y: float, s: str, *, cls: str = "", anchor: str = "middle") -> str:
    c = f' class="{cls}"' if cls else ""
    return f'<text x="{x}" y="{y}" text-anchor="{anchor}"{c}>{escape(s)}</text>'


def _box(x: float, y: float, w: float, name: str, note: str, fill: str) -> str:
    cx = x + w / 2
    return "\n".join(
        [
            f'<rect x="{x}" y="{y}" width="{w}" height="42" rx="6" fill="{fill}" '
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
    # The main column (IDLE, STARTING, RUNNING, WAITING) and the side column (BACKING_OFF,
    # PAUSED); the ending states in a row below the frame of a run, then FINISHING.
    mx, mw, mc = 24, 128, 88
    sx, sw = 222, 112
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(t["title"])}">',
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
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" rx="8" fill="#fff"/>',
        _box(mx, 8, mw, "IDLE", t["idle"], IDLE_FILL),
        _arrow((mc, 50), (mc, 80)),
        _text(mc + 8, 69, t["start"], anchor="start", cls="code"),
        # The frame of a run: from any state inside it, stop(), cancel() or an error end it.
        f'<rect x="4" y="74" width="332" height="232" rx="8" fill="none" stroke="{NOTE}" '
        'stroke-width="1" stroke-dasharray="4 3"/>',
        _text(326, 96, t["run"], anchor="end", cls="note"),
        _box(mx, 82, mw, "STARTING", t["starting"], HOOK_FILL),
        _arrow((mc, 124), (mc, 160)),
        _text(mc + 8, 146, t["returned"], anchor="start"),
        _box(mx, 160, mw, "RUNNING", t["running"], STATE_FILL),
        _box(sx, 160, sw, "BACKING_OFF", t["backing_off"], STATE_FILL),
        _arrow((mx + mw, 171), (sx, 171)),
        _text((mx + mw + sx) / 2, 166, t["handled"]),
        _arrow((sx, 191), (mx + mw, 191)),
        _text((mx + mw + sx) / 2, 212, t["retry"]),
        _arrow((mc, 202), (mc, 250)),
        _text(mc + 8, 230, t["returned"], anchor="start"),
        _box(mx, 250, mw, "WAITING", t["waiting"], STATE_FILL),
        _box(sx, 250, sw, "PAUSED", t["paused"], STATE_FILL),
        _arrow((mx + mw, 261), (sx, 261)),
        _text((mx + mw + sx) / 2, 256, t["pause"], cls="code"),
        _arrow((sx, 281), (mx + mw, 281)),
        _text((mx + mw + sx) / 2, 300, t["resume"], cls="code"),
        # The next slot has come: back to the body.
        _arrow((mx, 271), (12, 271), (12, 181), (mx, 181)),
        _text(16, 229, t["due"], anchor="start"),
        # How a run ends.
        _arrow((58, 306), (58, 350)),
        _text(64, 332, t["stop"], anchor="start", cls="code"),
        _arrow((172, 306), (172, 350)),
        _text(178, 332, t["cancel"], anchor="start", cls="code"),
        _arrow((285, 306), (285, 350)),
        _text(291, 332, t["error"], anchor="start"),
        _box(8, 350, 100, "STOPPING", t["stopping"], ENDING_FILL),
        _box(120, 350, 104, "CANCELLING", t["cancelling"], ENDING_FILL),
        _box(236, 350, 98, "FAILING", t["failing"], ENDING_FILL),
        _arrow((58, 392), (58, 430)),
        _arrow((172, 392), (172, 430)),
        _arrow((285, 392), (285, 430)),
        _box(8, 430, 326, "FINISHING", t["finishing"], HOOK_FILL),
        _arrow((58, 472), (58, 500)),
        _text(58, 516, t["ended"]),
        _text(58, 532, "IDLE", cls="code"),
        _arrow((250, 472), (250, 500)),
        _text(250, 516, t["restart"][0], cls="code"),
        _text(250, 532, t["restart"][1]),
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    for lang, name in (("en", "lifecycle.svg"), ("ko", "lifecycle.ko.svg")):
        (HERE / name).write_text(svg(lang), encoding="utf-8")
        print(HERE / name)
