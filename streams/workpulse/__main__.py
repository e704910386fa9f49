"""`python -m workpulse …` is the `workpulse` command."""

from workpulse.cli import run

run()
