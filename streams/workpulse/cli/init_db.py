"""`workpulse init-db`: create or migrate the ClickHouse schema."""

from __future__ import annotations

from typing import Any

import click

from workpulse.cli.options import CLICKHOUSE, settings_from, settings_options


@click.command("init-db")
@click.option(
    "--cluster", is_flag=True, help="Apply the cluster variant (Replicated + Distributed tables)."
)
@settings_options(*CLICKHOUSE, "schemas_dir")
def command(cluster: bool, **kwargs: Any) -> None:
    """Create or migrate the ClickHouse schema (idempotent) from the DDL in
    schemas/clickhouse/ (shipped in the package)."""
    from workpulse.clickhouse import apply_schema, connect

    settings = settings_from(kwargs)
    db = connect(settings.clickhouse_url_value, settings.data_dir)
    try:
        applied = apply_schema(db, settings.schemas_dir, cluster=cluster)
    finally:
        db.close()
    click.echo(f"schema applied: {len(applied)} files ({', '.join(applied)})", err=True)
