"""The counts agent's check that no watermark report was skipped: the backstop of the
seek fence (`worker.faust_tuning`).

A report is only ever handled once every report before it in its partition was: Faust
commits an offset only when all before it are acknowledged, so a report it dropped
unhandled (read, then cleared from the agent's queue) holds that partition's commit
back for good, and the windows those reports would have closed stay open. Within one
generation of the consumer group, the reports of a partition reach the agent in offset
order from where the group had committed, or from an earlier offset after a seek back;
a report *ahead* of the next one expected means the ones in between were dropped. The
worker then stops (a restart replays from the committed offset) instead of running on
with its windows stalled.

Pure: the caller looks up the committed and earliest offsets of a partition the first
time it sees it in a generation (`start`).
"""

from __future__ import annotations

from dataclasses import dataclass


class ReportGapError(RuntimeError):
    """Watermark reports were skipped: the worker must stop and replay them."""


COMMITTED = "the group's committed offset"
EARLIEST = "the partition's earliest offset"
FOLLOWING = "the one after the report handled before"


@dataclass(frozen=True, slots=True)
class ReportGap:
    partition: int
    expected: int
    got: int
    origin: str = FOLLOWING
    """Where `expected` came from: COMMITTED, EARLIEST or FOLLOWING."""

    def error(self, topic: str = "the reports' topic") -> ReportGapError:
        skipped = self.got - self.expected
        return ReportGapError(
            f"{topic} partition {self.partition}: expected offset {self.expected} "
            f"({self.origin}), got {self.got}: {skipped} offset"
            f"{'' if skipped == 1 else 's'} skipped by the consumer; a restart replays "
            "them from the committed offset"
        )


REPORTS_TOPIC_CONFIGS = {"cleanup.policy": "delete"}
"""How the reports' topic is created: every report keeps its offset until retention."""


def cleanup_policy_problem(topic: str, policy: str | None) -> str | None:
    """Why the reports' topic cannot be used as it is configured (None: it can). A
    compacted topic loses older reports of a key and leaves gaps in the offsets, which
    the check takes for reports the consumer skipped: the worker would stop at every
    start. `policy`: the topic's `cleanup.policy` (None: the broker does not say)."""
    if policy is None:
        return None
    policies = {p.strip().lower() for p in policy.split(",")}
    if "compact" not in policies:
        return None
    return (
        f"topic {topic} has cleanup.policy={policy}: the counts agent needs every watermark "
        "report's offset (compaction leaves gaps); set its cleanup.policy to delete"
    )


def first_offset(committed: int | None, earliest: int) -> tuple[int, str]:
    """Where a partition's reports start after an assignment, and why: the group's
    committed offset, or the log's start when there is none (the counts group reads
    from the earliest: `consumer_auto_offset_reset`) or when retention has deleted past
    it (the consumer resets to the earliest)."""
    if committed is None or committed < earliest:
        return earliest, EARLIEST
    return committed, COMMITTED


class ReportSequence:
    """The next report offset expected, per partition, in the newest generation seen."""

    def __init__(self) -> None:
        self._generation = -1
        self._next: dict[int, tuple[int, str]] = {}

    def current(self, generation: int) -> bool:
        """Whether a report of `generation` is checked: a newer generation (a
        rebalance: every partition is sought again) forgets what was expected; a report
        of an older one, still in flight, is neither checked nor counted."""
        if generation > self._generation:
            self._generation = generation
            self._next.clear()
        return generation == self._generation

    def knows(self, partition: int) -> bool:
        return partition in self._next

    def start(self, generation: int, partition: int, committed: int | None, earliest: int) -> None:
        """The partition's offsets, looked up on its first report of `generation`
        (ignored if a rebalance happened meanwhile)."""
        if generation == self._generation and partition not in self._next:
            self._next[partition] = first_offset(committed, earliest)

    def check(self, partition: int, offset: int) -> ReportGap | None:
        """The gap before this report, if reports were skipped (None: in order, or a
        report again after a seek back, or a partition not started)."""
        expected = self._next.get(partition)
        if expected is not None and offset > expected[0]:
            return ReportGap(partition, expected[0], offset, expected[1])
        return None

    def handled(self, partition: int, offset: int) -> None:
        """The report at `offset` was handled: the next one follows it (after a seek
        back, the reports from there on come again, in order; a partition whose lookup
        failed is checked from here on)."""
        self._next[partition] = (offset + 1, FOLLOWING)
