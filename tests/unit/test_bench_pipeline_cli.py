"""`workpulse bench pipeline`'s arguments: refused in one line before anything starts."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from workpulse.cli import main


@pytest.mark.parametrize(
    ("workers", "partitions"),
    [(2, 1), (3, 2), (8, 4)],
)
def test_more_workers_than_partitions_is_refused(workers: int, partitions: int) -> None:
    result = CliRunner().invoke(
        main,
        ["bench", "pipeline", "--workers", str(workers), "--partitions", str(partitions)],
    )
    assert result.exit_code == 2
    assert f"{workers} workers need at least {workers} partitions" in result.output
    assert "Traceback" not in result.output
