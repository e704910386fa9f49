"""The copycat index, read from the `workpulse.topic_copycat` view (090_copycat.sql;
definition and limits in docs/spikes.md): per wave and hour after its first alert, how
many authors new to the topic take up the wave's hashtags, against the rate before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


class Queryable(Protocol):
    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> Any: ...


@dataclass(frozen=True, slots=True)
class CopycatHour:
    """One row of `topic_copycat`: one wave, one hour after its start."""

    topic: str
    wave_start: datetime
    signature: tuple[str, ...]
    hours_after: int
    window_start: datetime
    new_authors: int
    adopters: int
    baseline_adopters_per_hour: float
    adoption_share: float
    copycat_index: float


@dataclass(frozen=True, slots=True)
class WaveUptake:
    """A wave's copycat figures over the 24 hours after its start (or what exists)."""

    topic: str
    wave_start: datetime
    signature: tuple[str, ...]
    hours: int  # hours after the start with at least one new author
    new_authors: int
    adopters: int
    baseline_adopters_per_hour: float
    copycat_index: float  # over the hours observed: (adopters/h + 1) / (baseline/h + 1)
    peak_copycat_index: float  # the highest hourly index

    def to_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "wave_start": self.wave_start.isoformat(),
            "signature": list(self.signature),
            "hours": self.hours,
            "new_authors": self.new_authors,
            "adopters": self.adopters,
            "baseline_adopters_per_hour": self.baseline_adopters_per_hour,
            "copycat_index": self.copycat_index,
            "peak_copycat_index": self.peak_copycat_index,
        }


HOURS_SQL = """
SELECT topic, wave_start, signature, hours_after, window_start, new_authors, adopters,
       baseline_adopters_per_hour, adoption_share, copycat_index
FROM workpulse.topic_copycat
WHERE ({topic:String} = '' OR topic = {topic:String})
ORDER BY topic, wave_start, hours_after
"""


def copycat_hours(db: Queryable, topic: str = "") -> list[CopycatHour]:
    """Every wave's hourly copycat figures (of one topic, or all)."""
    return [_hour(r) for r in db.query(HOURS_SQL, {"topic": topic}).rows]


def _hour(r: tuple[Any, ...]) -> CopycatHour:
    return CopycatHour(
        topic=r[0],
        wave_start=r[1],
        signature=tuple(r[2]),
        hours_after=int(r[3]),
        window_start=r[4],
        new_authors=int(r[5]),
        adopters=int(r[6]),
        baseline_adopters_per_hour=float(r[7]),
        adoption_share=float(r[8]),
        copycat_index=float(r[9]),
    )


def wave_uptake(db: Queryable, topic: str = "") -> list[WaveUptake]:
    """One line per wave: its copycat figures summed over the hours after its start."""
    waves: dict[tuple[str, datetime], list[CopycatHour]] = {}
    for hour in copycat_hours(db, topic):
        waves.setdefault((hour.topic, hour.wave_start), []).append(hour)
    out = []
    for (wave_topic, start), hours in waves.items():
        observed = max(h.hours_after for h in hours) + 1
        adopters = sum(h.adopters for h in hours)
        baseline = hours[0].baseline_adopters_per_hour
        out.append(
            WaveUptake(
                topic=wave_topic,
                wave_start=start,
                signature=hours[0].signature,
                hours=len(hours),
                new_authors=sum(h.new_authors for h in hours),
                adopters=adopters,
                baseline_adopters_per_hour=baseline,
                copycat_index=(adopters / observed + 1) / (baseline + 1),
                peak_copycat_index=max(h.copycat_index for h in hours),
            )
        )
    return out
