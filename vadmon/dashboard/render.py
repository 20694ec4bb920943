"""Pure rendering of a ``StateView`` into rich renderables sized for a terminal.

Sized explicitly (width × height) rather than left to rich, because the dashboard must stay
readable in a 100×30 tmux pane: every part gets a fixed line budget, cells are cut with an
ellipsis instead of wrapping, and cameras beyond the budget collapse into a "+N more" line.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from vadmon.dashboard.fit import content_width, duration_text, fit_words, pick_columns
from vadmon.dashboard.link_view import row_notes
from vadmon.dashboard.state import (
    CameraView,
    DashboardState,
    EventView,
    ProcessView,
    QueueView,
    StateView,
)
from vadmon.runtime.status_schema import MAX_RECENT_SCORES

BLOCKS = "▁▂▃▄▅▆▇█"
DASH = "—"
STATE_STYLE = {
    "online": "bold green",
    "connecting": "yellow",
    "stalled": "bold magenta",
    "offline": "bold red",
    "ended": "dim",
}
PROCESS_STYLE = {
    "running": "green",
    "alive": "green",
    "backoff": "yellow",
    "parked": "red",
    "pending": "yellow",
    "failed": "bold red",
    "silent": "bold red",
    "exited": "dim",
    "stopped": "dim",
    "stopping": "dim",
}
KIND_STYLE = {"start": "bold red", "open": "bold red", "update": "yellow", "end": "green"}
# camera table: fixed column widths; the sparkline and the label/reason share what is left
CAM_COLUMNS = (
    ("camera", 14, "left"),
    ("state", 10, "left"),
    ("cap/s", 5, "right"),
    ("inf/s", 5, "right"),
    ("skip", 5, "right"),
    ("lat ms", 6, "right"),
    ("score", 5, "right"),
)
LABEL_MIN, LABEL_MAX = 16, 40
SPARK_MIN = 4
FIXED_WIDTH = sum(w for _, w, _ in CAM_COLUMNS) + len(CAM_COLUMNS) + 1  # + separators
MIN_WIDTH = FIXED_WIDTH + SPARK_MIN + LABEL_MIN
MIN_HEIGHT = 12
CAM_DROP_ORDER = (5, 4, 3, 2)  # lat ms, skip, inf/s, cap/s: what goes first when narrow
TREND_ROOM = 36  # sparkline + label: below this, optional camera columns make way
TREND_TITLES = ("trend · label · why not online", "trend · label · why")
RIGHT_PANEL_WIDTH = 38
QUEUE_PANEL_HEIGHT = 4


def sparkline(values: Sequence[float], width: int) -> str:
    """Scores in [0, 1] as unicode blocks on a fixed scale (so a calm camera looks calm)."""
    if width <= 0:
        return ""
    last = list(values)[-width:]  # one block per scored snippet, newest right
    top = len(BLOCKS) - 1
    chars = [BLOCKS[min(max(int(v * len(BLOCKS)), 0), top)] for v in last]
    return "".join(chars).rjust(width)


def render(
    state: DashboardState | StateView,
    width: int = 100,
    height: int = 30,
    *,
    now: float | None = None,
    threshold: float = 0.5,
) -> RenderableType:
    """The whole dashboard in at most ``height`` lines of at most ``width`` columns."""
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        need = f"terminal too small (need {MIN_WIDTH}x{MIN_HEIGHT}, have {width}x{height})"
        return _line(Text(need, style="bold yellow"), width)
    view = state if isinstance(state, StateView) else state.view(now)
    parts: list[RenderableType] = [_line(_header(view, width), width)]
    if view.banner:
        parts.append(_line(Text(view.banner, style="bold black on yellow"), width, "center"))
    free = height - len(parts) - 1  # the key hint line at the bottom
    bottom = _bottom_height(free, len(view.cameras))
    parts.append(_cameras(view.cameras, width, free - bottom, threshold))
    if bottom:
        parts.append(_bottom(view, width, bottom))
    parts.append(_line(_hint(view, width), width))
    return Group(*parts)


def _line(text: Text, width: int, justify: str = "left") -> Text:
    text.no_wrap, text.overflow, text.justify = True, "ellipsis", justify
    text.truncate(width, overflow="ellipsis")
    return text


def _bottom_height(free: int, cameras: int) -> int:
    """Cameras first (up to half the room when there are many), the events panel gets the
    rest: a tall terminal shows more events; none below 8 free lines."""
    if free < 8:
        return 0
    camera_lines = min(cameras + 1, max(free - 6, free // 2))
    return max(6, free - max(camera_lines, 2))


def _hint(view: StateView, width: int) -> Text:
    """Keys, and where the processes' log lines went (cut from the left: the end of a path is
    the part that tells)."""
    text = Text("Ctrl-C", style="bold")
    text.append(" stop", style="dim")
    if view.log_dir:
        text.append("   logs ", style="dim")
        room = width - len(text.plain)
        path = view.log_dir
        text.append(path if len(path) <= room else "…" + path[-max(room - 1, 1) :])
    return text


# --- header ---------------------------------------------------------------------------------


def _header(view: StateView, width: int = 1000) -> Text:
    """Whole parts only, in order of importance: what does not fit is left out, not cut."""
    online = sum(c.state == "online" for c in view.cameras)
    inf = view.inference
    parts: list[tuple[str, str]] = [
        (time.strftime("%H:%M:%S", time.localtime(view.now)), ""),
        (f"  cameras {online}/{len(view.cameras)} online", ""),
    ]
    if inf.loading_s is not None and not inf.stale:
        parts.append((f"  inference loading model ({inf.loading_s:.0f} s)", "yellow"))
    elif inf.stale:
        parts.append(("  inference —", "red"))
    else:
        desc = " ".join(x for x in (inf.device, inf.precision, inf.mode) if x)
        parts.append((f"  inference {desc or 'up'}", ""))
        if inf.encoder and not inf.encoder.startswith(("torch", "triton up")):
            parts.append((f"  encoder: {inf.encoder}", "red"))
    if view.queue.events_total is not None:
        parts.append((f"  events {int(view.queue.events_total)}", ""))
    alert = view.alert_latency
    if alert.count:
        parts.append((f"  alert lat {alert.total / alert.count:.2f}s", ""))
    text = Text()
    text.append("vadmon ", style="bold cyan")
    for part, style in parts:
        if len(text.plain) + len(part) <= width:
            text.append(part, style=style)
    return text


# --- cameras --------------------------------------------------------------------------------


def _cameras(
    cams: Sequence[CameraView], width: int, lines: int, threshold: float
) -> RenderableType:
    shown_cols = _camera_columns(width)
    fixed = sum(CAM_COLUMNS[i][1] + 1 for i in shown_cols) + 1
    rest = width - fixed - 1
    label_w = max(LABEL_MIN, min(LABEL_MAX, rest * 2 // 5))
    spark_w = max(SPARK_MIN, min(MAX_RECENT_SCORES, rest - label_w - 1))
    table = Table(box=None, padding=(0, 1, 0, 0), pad_edge=False, show_edge=False)
    table.width = min(width, fixed + spark_w + 1 + label_w)
    trend_w = spark_w + 1 + label_w
    trend = next(t for t in (*TREND_TITLES, "trend") if len(t) <= trend_w)
    columns = (*(CAM_COLUMNS[i] for i in shown_cols), (trend, trend_w, "left"))
    for title, w, justify in columns:
        table.add_column(
            title, width=w, justify=justify, no_wrap=True, overflow="ellipsis", header_style="bold"
        )
    rows = max(lines - 1, 1)
    shown = list(cams) if len(cams) <= rows else list(cams)[: max(rows - 1, 0)]
    for cam in shown:
        cells = _camera_cells(cam, spark_w, threshold, trend_w)
        table.add_row(*(cells[i] for i in (*shown_cols, len(cells) - 1)))
    if not cams:
        table.add_row(Text("no cameras yet", style="dim"))
    hidden = list(cams)[len(shown) :]
    if not hidden:
        return table
    down = sum(c.state in ("offline", "stalled") for c in hidden)
    more = Text(f"+{len(hidden)} more", style="bold")
    if down:
        more.append(f" ({down} offline/stalled)", style="red")
    return Group(table, _line(more, width))


def _camera_columns(width: int) -> list[int]:
    """Camera table columns that leave the trend cell ``TREND_ROOM`` columns, dropped whole
    (latency first, capture fps last); name, state and score always stay."""
    keep = list(range(len(CAM_COLUMNS)))
    for i in CAM_DROP_ORDER:
        fixed = sum(CAM_COLUMNS[k][1] + 1 for k in keep) + 1
        if width - fixed - 1 >= TREND_ROOM:
            break
        keep.remove(i)
    return keep


def _camera_cells(
    cam: CameraView, spark_w: int, threshold: float, trend_w: int = 1000
) -> list[Text]:
    inf_style = "dim" if cam.inference_stale else ""
    alarm = cam.score is not None and cam.score >= threshold
    return [
        Text(cam.name),
        Text(cam.state, style=STATE_STYLE.get(cam.state, "")),
        _num(cam.capture_fps, "{:.1f}"),
        _num(cam.inference_fps, "{:.1f}", inf_style),
        _count(cam.skipped_total, inf_style),
        _num(cam.latency_ms, "{:.0f}", inf_style),
        _num(cam.score, "{:.2f}", "bold red" if alarm else inf_style),
        _trend(cam, spark_w, alarm, trend_w),
    ]


def _trend(cam: CameraView, spark_w: int, alarm: bool, trend_w: int = 1000) -> Text:
    """Why a camera is not online, across the whole cell (its sparkline says nothing then);
    otherwise the sparkline, then the winning label only while the score is over the threshold
    (a calm camera's top class, "fighting 0.03", would read as an alarm)."""
    held = row_notes(cam)  # held back by the flood guard, refused by the link: never silent
    if cam.reason:
        reason = Text(fit_words(cam.reason, max(1, trend_w - len(held))))
        reason.stylize(STATE_STYLE.get(cam.state, "yellow"))
        return reason.append(held, style="yellow") if held else reason
    spark = sparkline(cam.history, max(1, spark_w - len(held)))
    text = Text(spark, style="red" if alarm else "cyan")
    if held:
        text.append(held, style="yellow")
    if alarm and cam.label:
        text.append(" ")
        text.append(cam.label, style="bold red")
        if cam.label_prob is not None:
            text.append(f" {cam.label_prob:.2f}", style="dim")
    return text


def _num(value: float | None, fmt: str, style: str = "") -> Text:
    return Text(DASH, style="dim") if value is None else Text(fmt.format(value), style=style)


def _count(value: float | None, style: str = "") -> Text:
    """Counters in at most 5 columns: 1234, 12.3k, 4.5M."""
    if value is None:
        return Text(DASH, style="dim")
    if value < 10_000:
        return Text(f"{value:.0f}", style=style)
    if value < 1_000_000:
        return Text(f"{value / 1000:.1f}k", style=style)
    return Text(f"{value / 1_000_000:.1f}M", style=style)


# --- bottom: events | webhook queue + processes -------------------------------------------------


def _bottom(view: StateView, width: int, height: int) -> RenderableType:
    right_w = RIGHT_PANEL_WIDTH if width >= 90 else max(24, width * 2 // 5)
    left_w = max(width - right_w, 20)
    grid = Table.grid(padding=0)
    grid.add_column(width=left_w, no_wrap=True)
    grid.add_column(width=right_w, no_wrap=True)
    queue_h = min(QUEUE_PANEL_HEIGHT, height // 2)
    right = Group(
        Panel(_queue(view.queue), title="webhooks", height=queue_h, width=right_w),
        Panel(
            _processes(view.processes, height - queue_h - 3),
            title="processes",
            height=height - queue_h,
            width=right_w,
        ),
    )
    title = "recent events"
    if view.queue.suppressed_cooldown:  # a recurring anomaly is alerted once per cooldown
        title += f" (+{view.queue.suppressed_cooldown:.0f} held back by cooldown)"
    table = _events(view.events, height - 3, True, left_w - 4)  # border + padding
    events = Panel(table, title=fit_words(title, left_w - 6), height=height, width=left_w)
    grid.add_row(events, right)
    return grid


EVENT_COLUMNS = (
    ("time", 8, "left"),
    ("camera", 14, "left"),
    ("label", 18, "left"),
    ("prob", 4, "right"),
    ("dur", 6, "right"),
    ("state", 6, "left"),
)
EVENT_PRIORITY = (0, 1, 2, 5, 4, 3)  # time, camera, label, state, dur, prob
WHY_MIN = 16  # the explanation shows only with at least this much room


def _events(
    events: Sequence[EventView], rows: int, why: bool = False, room: int = 1000
) -> RenderableType:
    """Columns by priority, each as wide as its content, dropped whole when ``room`` (the
    panel's inner width) is short; the explanation takes what is left, cut at a word."""
    if not events:
        return Text("no events yet", style="dim")
    shown = list(events[: max(rows, 1)])
    cells = [_event_cells(ev) for ev in shown]
    widths = [
        content_width(title, [row[i].plain for row in cells], cap)
        for i, (title, cap, _) in enumerate(EVENT_COLUMNS)
    ]
    keep = pick_columns(widths, EVENT_PRIORITY, room)
    left = room - sum(widths[i] + 1 for i in keep)
    why = why and left >= WHY_MIN and any(ev.text for ev in shown)
    table = Table(box=None, padding=(0, 1, 0, 0), pad_edge=False, show_edge=False)
    for i in keep:
        title, _, justify = EVENT_COLUMNS[i]
        table.add_column(title, width=widths[i], justify=justify, no_wrap=True, header_style="bold")
    if why:
        table.add_column("why", width=left, no_wrap=True, header_style="bold")
    for ev, row in zip(shown, cells, strict=True):
        extra = [Text(fit_words(ev.text or "", left), style="dim")] if why else []
        table.add_row(*(row[i] for i in keep), *extra)
    return table


def _event_cells(ev: EventView) -> list[Text]:
    start = time.strftime("%H:%M:%S", time.localtime(ev.start)) if ev.start else DASH
    return [
        Text(start),
        Text(fit_words(ev.camera, 14)),
        Text(fit_words(ev.label, 18)),
        _num(ev.prob, "{:.2f}"),
        Text(duration_text(ev.duration)),
        Text(ev.kind, style=KIND_STYLE.get(ev.kind, "")),
    ]


def _queue(q: QueueView) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    if q.webhooks == 0:
        text.append("none configured", style="dim")
        return text
    pairs = (("pending", q.pending), ("retrying", q.retrying))
    pairs2 = (("delivered", q.delivered), ("dead", q.dead))
    values = [DASH if v is None else f"{v:.0f}" for _, v in (*pairs, *pairs2)]
    value_w = max(len(v) for v in values) + 2  # same columns in both rows, nothing cut
    for i, row in enumerate((pairs, pairs2)):
        if i:
            text.append("\n")
        for j, (key, value) in enumerate(row):
            shown = DASH if value is None else f"{value:.0f}"
            style = "bold red" if key == "dead" and value else ""
            text.append(f"{key:<10}")
            text.append(shown if j else f"{shown:<{value_w}}", style=style)
    return text


def _processes(procs: Sequence[ProcessView], rows: int) -> RenderableType:
    if not procs:
        return Text("no processes", style="dim")
    table = _small_table(("process", 18, "left"), ("state", 8, "left"), ("rst", 3, "right"))
    rows = max(rows, 1)
    shown = procs if len(procs) <= rows else procs[: rows - 1]
    for p in shown:
        table.add_row(
            Text(p.name),
            Text(p.state, style=PROCESS_STYLE.get(p.state, "")),
            Text(str(p.restarts), style="yellow" if p.restarts else "dim"),
        )
    if len(shown) < len(procs):
        table.add_row(Text(f"+{len(procs) - len(shown)} more", style="bold"))
    return table


def _small_table(*columns: tuple[str, int, str]) -> Table:
    table = Table(box=None, padding=(0, 1, 0, 0), pad_edge=False, show_edge=False)
    for title, w, justify in columns:
        table.add_column(
            title,
            max_width=w,
            justify=justify,
            no_wrap=True,
            overflow="ellipsis",
            header_style="bold",
        )
    return table
