"""The end-of-run summary, read back from ClickHouse (what analysts will see)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Group
from rich.markup import escape
from rich.table import Table

from workpulse.clickhouse import Database
from workpulse.clickhouse.copycat import wave_uptake
from workpulse.terminal import cell
from workpulse.worker.steps import Progress


@dataclass
class Summary:
    messages: int
    accepted_events: int
    dead_letters: int
    duplicates: int
    topics: list[dict[str, Any]] = field(default_factory=list)
    spikes: list[dict[str, Any]] = field(default_factory=list)
    copycat: list[dict[str, Any]] = field(default_factory=list)
    dead_letter_reasons: dict[str, int] = field(default_factory=dict)
    counts_match_recount: bool = False
    report: str | None = None  # the HTML report written at the end (workpulse report)
    not_sent: int = 0
    """Input messages Kafka refused (too large): never processed, so not in `messages`."""
    not_sent_detail: str = ""

    @property
    def accounted(self) -> bool:
        return self.accepted_events + self.dead_letters + self.duplicates == self.messages

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["accounted"] = self.accounted
        return out

    def render(self) -> Group:
        head = Table.grid(padding=(0, 2))
        ok = "[green]✓[/green]"
        bad = "[red]✗[/red]"
        head.add_row(
            "messages",
            f"{self.messages:,} = {self.accepted_events:,} accepted + {self.dead_letters:,} "
            f"dead-lettered + {self.duplicates:,} duplicates {ok if self.accounted else bad}",
        )
        head.add_row(
            "topic_counts_1m = recount of video_events",
            ok if self.counts_match_recount else bad,
        )
        if self.not_sent:
            head.add_row("not sent to Kafka", f"[red]{escape(self.not_sent_detail)}[/red]")
        if self.report:
            head.add_row("report", self.report)
        topics = Table(title="top topics (from ClickHouse)")
        for col in ("topic", "videos", "views", "authors"):
            topics.add_column(col, justify="left" if col == "topic" else "right")
        for t in self.topics:
            topics.add_row(
                cell(t["topic"]), f"{t['videos']:,}", f"{t['views']:,}", f"{t['authors']:,}"
            )
        spikes = Table(title=f"spikes ({len(self.spikes)})")
        for col in (
            "topic",
            "minute (UTC, event time)",
            "signal",
            "severity",
            "observed",
            "expected",
            "score",
            "top hashtags",
        ):
            spikes.add_column(col)
        for s in self.spikes[:15]:
            spikes.add_row(
                cell(s["topic"]),
                str(s["window_start"])[:16],
                cell(s.get("metric", "videos") + (f"/{s['lang']}" if s.get("lang") else "")),
                s.get("severity") or "–",
                f"{s['observed']:.0f}",
                f"{s['expected']:.1f}",
                f"{s['score']:.1f}",
                cell(" ".join("#" + h for h in s["top_hashtags"][:3])),
            )
        copycat = Table(title="copycat index (new authors taking up a wave's hashtags)")
        for col in ("topic", "wave start (UTC)", "signature"):
            copycat.add_column(col)
        for col in ("new authors", "adopters", "before /h", "index"):
            copycat.add_column(col, justify="right")
        for w in self.copycat[:10]:
            copycat.add_row(
                cell(w["topic"]),
                w["wave_start"][:16],
                cell(" ".join("#" + h for h in w["signature"][:3])),
                f"{w['new_authors']:,}",
                f"{w['adopters']:,}",
                f"{w['baseline_adopters_per_hour']:.2f}",
                f"{w['copycat_index']:.1f}",
            )
        parts: list[Any] = [head, topics, spikes]
        if self.copycat:
            parts.append(copycat)
        if self.dead_letter_reasons:
            dl = Table(title="dead letters by reason")
            dl.add_column("reason")
            dl.add_column("messages", justify="right")
            for reason, n in sorted(self.dead_letter_reasons.items(), key=lambda kv: -kv[1]):
                dl.add_row(cell(reason), f"{n:,}")
            parts.append(dl)
        return Group(*parts)


COUNTS_SQL = """
SELECT topic, sum(videos) AS videos, sum(views) AS views, uniqExactMerge(authors) AS authors
FROM workpulse.topic_counts_1m GROUP BY topic ORDER BY videos DESC, topic
"""
RECOUNT_SQL = """
SELECT topic, countIf(kind = 'publish') AS videos, sum(d_views) AS views
FROM workpulse.video_events ARRAY JOIN topics AS topic GROUP BY topic ORDER BY topic
"""
SPIKES_SQL = """
SELECT topic, window_start, metric, lang, severity, observed, expected, score, top_hashtags
FROM workpulse.topic_spikes
ORDER BY window_start, topic, metric, lang, detected_at DESC
LIMIT 1 BY topic, window_start, metric, lang
"""


def counts_match_recount(db: Database) -> bool:
    counts = {r[0]: (int(r[1]), int(r[2])) for r in db.query(COUNTS_SQL).rows}
    recount = {r[0]: (int(r[1]), int(r[2])) for r in db.query(RECOUNT_SQL).rows}
    return counts == recount


def read_summary(db: Database, progress: Progress, messages: int) -> Summary:
    accepted = int(db.query("SELECT uniqExact(event_id) FROM workpulse.video_events").rows[0][0])
    dead = int(db.query("SELECT count() FROM workpulse.dead_letters").rows[0][0])
    reasons = {
        str(r[0]): int(r[1])
        for r in db.query("SELECT reason, count() FROM workpulse.dead_letters GROUP BY reason").rows
    }
    topics = [
        {"topic": r[0], "videos": int(r[1]), "views": int(r[2]), "authors": int(r[3])}
        for r in db.query(COUNTS_SQL).rows
    ]
    spikes = [
        {
            "topic": r[0],
            "window_start": str(r[1]),
            "metric": r[2],
            "lang": r[3],
            "severity": r[4],
            "observed": float(r[5]),
            "expected": float(r[6]),
            "score": float(r[7]),
            "top_hashtags": list(r[8]),
        }
        for r in db.query(SPIKES_SQL).rows
    ]
    copycat = [w.to_dict() for w in wave_uptake(db)]
    return Summary(
        messages=messages,
        accepted_events=accepted,
        dead_letters=dead,
        duplicates=progress.duplicates,
        topics=topics,
        spikes=spikes,
        copycat=copycat,
        dead_letter_reasons=reasons,
        counts_match_recount=counts_match_recount(db),
    )
