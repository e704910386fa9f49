"""What grafana-clickhouse-datasource (v4) does to a panel's SQL before ClickHouse sees
it, so that tests can run the dashboards' queries on chDB:

1. the front end expands `$__conditionalAll(condition, $var)` to the condition, or
   `1=1` when the variable is All or empty;
2. Grafana interpolates variables: `${var:singlequote}` → `'a','b'`, `${var}` and
   `$var` → the values joined by commas;
3. the plugin's backend expands the time macros with the dashboard's range
   (FROM/TO): `$__timeFilter(c)`, `$__timeFilter_ms(c)`, `$__fromTime`, `$__toTime`,
   `$__timeInterval(c)`, `$__interval_s`, `$__dateFilter(c)`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

ALL = "$__all"


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime
    interval_s: int = 60

    @property
    def from_s(self) -> int:
        return int(self.start.timestamp())

    @property
    def to_s(self) -> int:
        return int(self.end.timestamp())


def _balanced_args(sql: str, open_at: int) -> tuple[list[str], int]:
    """Arguments of the call whose '(' is at `open_at`, split at top-level commas."""
    depth, args, start = 0, [], open_at + 1
    quote: str | None = None
    for i in range(open_at, len(sql)):
        c = sql[i]
        if quote:
            if c == quote:
                quote = None
            continue
        if c in "'\"":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                args.append(sql[start:i].strip())
                return args, i + 1
        elif c == "," and depth == 1:
            args.append(sql[start:i].strip())
            start = i + 1
    raise ValueError(f"unbalanced parentheses in {sql[open_at : open_at + 80]!r}")


def _expand_calls(sql: str, name: str, fn: object) -> str:
    token = name + "("
    while (at := sql.find(token)) >= 0:
        args, end = _balanced_args(sql, at + len(name))
        sql = sql[:at] + fn(*args) + sql[end:]  # type: ignore[operator]
    return sql


def _selected(values: Sequence[str] | str) -> list[str]:
    return [values] if isinstance(values, str) else list(values)


def expand(
    sql: str,
    variables: Mapping[str, Sequence[str] | str],
    time_range: TimeRange,
    all_values: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """The SQL the ClickHouse server receives. `variables` maps a name to its selected
    values (ALL for All); `all_values` gives the options that All stands for."""
    all_values = all_values or {}

    def is_all(var: str) -> bool:
        name = var.strip().lstrip("$").strip("{}")
        chosen = _selected(variables.get(name, []))
        return not chosen or ALL in chosen

    sql = _expand_calls(sql, "$__conditionalAll", lambda cond, var: "1=1" if is_all(var) else cond)

    def values(name: str) -> list[str]:
        chosen = _selected(variables[name])
        return list(all_values.get(name, [])) if ALL in chosen else chosen

    def var(m: re.Match[str]) -> str:
        name, fmt = m.group("name") or m.group("bare"), m.group("fmt")
        if name not in variables:
            return m.group(0)
        vals = values(name)
        if fmt == "singlequote":
            return ",".join("'" + v.replace("'", "\\'") + "'" for v in vals)
        if fmt not in (None, "csv"):
            raise ValueError(f"variable format {fmt} not supported here")
        return ",".join(vals)

    sql = re.sub(r"\$\{(?P<name>\w+)(?::(?P<fmt>\w+))?\}|\$(?P<bare>(?!__)\w+)", var, sql)

    tr = time_range
    n = max(tr.interval_s, 1)
    sql = _expand_calls(
        sql,
        "$__timeFilter_ms",
        lambda c: (
            f"{c} >= fromUnixTimestamp64Milli({tr.from_s * 1000}) AND "
            f"{c} <= fromUnixTimestamp64Milli({tr.to_s * 1000})"
        ),
    )
    sql = _expand_calls(
        sql,
        "$__timeFilter",
        lambda c: f"{c} >= toDateTime({tr.from_s}) AND {c} <= toDateTime({tr.to_s})",
    )
    sql = _expand_calls(
        sql,
        "$__dateFilter",
        lambda c: f"{c} >= toDate('{tr.start:%Y-%m-%d}') AND {c} <= toDate('{tr.end:%Y-%m-%d}')",
    )
    sql = _expand_calls(
        sql,
        "$__timeInterval",
        lambda c: f"toStartOfInterval(toDateTime({c}), INTERVAL {n} second)",
    )
    sql = sql.replace("$__fromTime", f"toDateTime({tr.from_s})")
    sql = sql.replace("$__toTime", f"toDateTime({tr.to_s})")
    sql = sql.replace("$__interval_s", str(n))
    if "$__" in sql:
        raise ValueError(f"unexpanded macro in {sql!r}")
    return sql


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
