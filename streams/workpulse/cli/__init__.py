"""The `workpulse` command line: one module per verb, assembled here.

Every verb reads its settings through `options.settings_from` (flags, then WORKPULSE_*
variables, then defaults). Errors a person sees are one line; WORKPULSE_DEBUG=1 shows
the traceback.
"""

from __future__ import annotations

import logging
import os
import sys

import click

from workpulse import __version__
from workpulse.cli import bench, demo, init_db, produce, query, report, spikes, tag, worker
from workpulse.cli.options import UserError
from workpulse.errors import first_line

__all__ = ["UserError", "main", "run"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="workpulse")
def main() -> None:
    """workpulse: watch a short-video stream for work topics (#QuitMyJob, layoffs,
    salary, burnout, strikes…), count them per minute, detect viral spikes.

    Start with `workpulse demo`. Every option can also be set with the
    WORKPULSE_* variable shown in each command's --help.
    """


for module in (demo, worker, produce, tag, query, report, spikes, init_db, bench):
    main.add_command(module.command)


def run() -> None:
    """Entry point with one-line errors."""
    # clickhouse-connect logs a warning before raising ("Unexpected Http Driver
    # Exception"); with no logging set up (query, report, spikes) Python's last-resort
    # handler printed it above the error line. A handler of its own silences that; the
    # records still reach the handlers the pipeline verbs set up (setup_logging).
    logging.getLogger("clickhouse_connect").addHandler(logging.NullHandler())
    try:
        main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:
        if os.environ.get("WORKPULSE_DEBUG"):
            raise
        click.echo(
            f"workpulse: error: {first_line(exc)} (WORKPULSE_DEBUG=1 shows the traceback)", err=True
        )
        if getattr(exc, "hard_exit", False):
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(1)
        sys.exit(1)
