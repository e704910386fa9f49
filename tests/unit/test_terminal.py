"""Every view shows data verbatim: no markup, no emoji codes, no terminal control."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from workpulse.dev.demo import ProduceState, progress_view
from workpulse.dev.summary import Summary
from workpulse.terminal import data_table, safe_text
from workpulse.worker.steps import Progress

HOSTILE = [
    "[bold red]hi[/] :x: [/nope]",  # markup that would fail to parse, and an emoji code
    ":thumbs_up: [link=http://evil]click[/link]",
    "\x1b[31mred\x1b[0m\x1b]0;title\x07",  # ANSI colour and a window-title sequence
    "abc\u202edcba\u202c \u2066x\u2069",  # bidi override and isolates
    "ok\ttab",
]


def render(renderable: Any) -> str:
    console = Console(file=io.StringIO(), width=400, force_terminal=True, color_system=None)
    console.print(renderable)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "\x1b" not in out and "\u202e" not in out
    return out


def expected(value: str) -> str:
    return safe_text(value)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("[bold]x[/bold]", "[bold]x[/bold]"),
        (":x:", ":x:"),
        ("\x1b[2J", "\\x1b[2J"),
        ("a\u202eb", "a\\u202eb"),
        ("\x9b", "\\x9b"),  # C1 CSI
        ("é 😀 مرحبا", "é 😀 مرحبا"),  # ordinary text, any script, stays as it is
    ],
)
def test_safe_text(value: str, shown: str) -> None:
    assert safe_text(value) == shown


@pytest.mark.parametrize("value", HOSTILE)
def test_query_table(value: str) -> None:
    out = render(data_table([value], [[value]]))
    assert out.count(expected(value).split("\t")[0]) >= 2  # header and cell


@pytest.mark.parametrize("value", HOSTILE)
def test_summary(value: str) -> None:
    summary = Summary(
        messages=1,
        accepted_events=1,
        dead_letters=0,
        duplicates=0,
        topics=[{"topic": value, "videos": 1, "views": 2, "authors": 1}],
        spikes=[
            {
                "topic": value,
                "window_start": "2026-01-01 01:11:00",
                "observed": 25.0,
                "expected": 3.2,
                "score": 13.7,
                "top_hashtags": [value],
            }
        ],
        dead_letter_reasons={value: 3},
        counts_match_recount=True,
    )
    out = render(summary.render())
    assert out.count(expected(value).split("\t")[0]) >= 3


@pytest.mark.parametrize("value", HOSTILE)
def test_progress_view(value: str) -> None:
    class FakeWorker:
        progress = Progress(processed=3, accepted=3, topic_videos={value: 3})

    out = render(progress_view(FakeWorker(), ProduceState(produced=3), value))  # type: ignore[arg-type]
    assert out.count(expected(value).split("\t")[0]) >= 2  # topic row and metrics url
