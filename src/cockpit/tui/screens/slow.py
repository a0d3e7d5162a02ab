"""Slow queries: each postgres source's statements slowest on average over its last window,
asked of the engine on demand. Says plainly when there is nothing to show, and why: no
postgres source, the source down, no ranking yet, or no statement in the window."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from cockpit.core.control import Refused
from cockpit.core.durations import format_duration
from cockpit.core.engine_thread import EngineThread, SlowReport

if TYPE_CHECKING:  # psycopg is imported only by plans with a postgres source
    from cockpit.core.sources.postgres_slowest import Slowest, SlowQuery

TITLE = "Slow queries: slowest on average over the last window"
ASK_TIMEOUT_S = 5.0  # the engine answers in milliseconds; longer means it is stuck


async def slow_screen(engine: EngineThread | None) -> SlowScreen:
    """Ask the engine's thread for the slowest statements; the screen that shows them (or
    says why it cannot). Never raises: a stuck or stopped engine is said on the screen."""
    if engine is None:
        return SlowScreen((), problem="the engine is not running")
    try:
        reports = await asyncio.wait_for(asyncio.wrap_future(engine.slowest()), ASK_TIMEOUT_S)
    except Refused as exc:
        return SlowScreen((), problem=str(exc))
    except TimeoutError:
        return SlowScreen((), problem=f"the engine did not answer in {ASK_TIMEOUT_S:g}s")
    return SlowScreen(reports)


def ms_text(ms: float) -> str:
    """A time as people read it: 0.42ms, 12.3ms, 2.05s."""
    if ms < 1:
        return f"{ms:.2f}ms"
    if ms < 1000:
        return f"{ms:.1f}ms"
    return f"{ms / 1000:.2f}s"


# A line of the screen and whether it is a statement's text (indented, wrapped lines too).
Line = tuple[Content, bool]


def plain(contents: Sequence[Content]) -> list[Line]:
    return [(content, False) for content in contents]


def query_lines(queries: Sequence[SlowQuery], slow_ms: float, *, dim: bool) -> list[Line]:
    """Two lines a statement: rank, mean, calls and total; then its text."""
    over = f" over {format_duration(slow_ms / 1000)} (slow_query)"
    lines: list[Line] = []
    for rank, query in enumerate(queries, 1):
        slow = query.mean_ms >= slow_ms
        mean = Content.styled(f"mean {ms_text(query.mean_ms):>8}", "bold $error" if slow else "")
        numbers = Content.assemble(
            f"{rank}. ",
            mean,
            f"  calls {query.calls:>6}  total {ms_text(query.total_ms):>8}",
            over if slow else "",
        )
        text = Content(query.query)
        if dim:
            numbers, text = numbers.stylize("dim"), text.stylize("dim")
        lines += [(numbers, False), (text, True)]
    return lines


def report_lines(report: SlowReport) -> list[Line]:
    """One source's part of the screen: its name, its state, the data's age, then the list or
    the reason there is none. The last known list stays, dimmed, with its age."""
    slowest: Slowest = report.slowest
    status = report.status
    head = [Content.styled(report.source, "bold")]
    if status.up is None:
        return plain([*head, Content.styled("waiting for the first poll", "dim")])
    if not status.up:
        head.append(Content.styled(f"source down: {status.error or 'no answer'}", "bold $error"))
    elif slowest.reason is not None:
        head.append(Content.styled(f"no ranking now: {slowest.reason}", "dim"))
    if slowest.taken_at is None:
        if len(head) == 1:
            head.append(Content.styled("no ranking yet", "dim"))
        return plain(head)
    age = report.now - slowest.taken_at
    stale = age > report.stale_after_s
    when = f"ranked {format_duration(age)} ago, over the last {format_duration(slowest.span_s)}"
    body: list[Line] = []
    if not slowest.queries:
        head.append(Content(f"no slow queries in the last window ({when}): no statement ran"))
    else:
        old = stale or not status.up or slowest.reason is not None
        label = (f"last known, {when}" if old else when) + (" (stale)" if stale else "")
        head.append(Content.styled(label, "dim" if old else ""))
        body = query_lines(slowest.queries, report.slow_query_s * 1000, dim=old)
    if slowest.hidden_calls:
        hidden = (
            f"{slowest.hidden_calls} calls by other roles' statements not shown:"
            " GRANT pg_read_all_stats to the cockpit's role"
        )
        body.append((Content.styled(hidden, "dim"), False))
    return plain(head) + body


class SlowScreen(ModalScreen[None]):
    """Shows what it is given (`slow_screen` asks the engine); closes on Esc, q or s."""

    DEFAULT_CSS = """
    SlowScreen { align: center middle; }
    SlowScreen > VerticalScroll { width: 95%; max-width: 120; height: auto; max-height: 95%;
                                  border: thick $primary; background: $surface; padding: 0 1; }
    SlowScreen #slow-title { text-style: bold; }
    SlowScreen .-query { padding-left: 3; }
    """
    BINDINGS = [Binding("escape,q,s", "close", "Close", id="slow.close")]

    def __init__(self, reports: Sequence[SlowReport], *, problem: str | None = None) -> None:
        """`reports`: one per postgres source (none: the plan has none); `problem`: why the
        engine could not be asked."""
        super().__init__()
        self.reports = tuple(reports)
        self.problem = problem

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(f"{TITLE} (Esc closes)", id="slow-title")
            for content, is_query in self.body():
                yield Static(content, classes="-query" if is_query else "")

    def body(self) -> list[Line]:
        if self.problem is not None:
            return plain([Content.styled(f"cannot ask the engine: {self.problem}", "bold $error")])
        if not self.reports:
            return plain([Content("no postgres source in the plan")])
        lines: list[Line] = []
        for report in self.reports:
            if lines:
                lines.append((Content(""), False))
            lines += report_lines(report)
        return lines

    def text(self) -> str:
        """Everything the screen says, as plain text (for tests and people alike)."""
        return "\n".join(content.plain for content, _ in self.body())

    def action_close(self) -> None:
        self.dismiss(None)
