"""Command-line flags built from the settings' fields, so that `--help` names every
`WORKPULSE_*` variable, and the one way a command turns its flags into `Settings`."""

from __future__ import annotations

import contextlib
import os
import sys
import types
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, TextIO, TypeVar

import click
from pydantic import SecretStr

from workpulse.config import ConfigError, Settings, env_name, load_settings

F = TypeVar("F", bound=Callable[..., Any])

KAFKA = (
    "kafka_bootstrap",
    "kafka_security_protocol",
    "kafka_sasl_mechanism",
    "kafka_sasl_username",
    "kafka_sasl_password",
    "kafka_ssl_cafile",
)
CLICKHOUSE = ("clickhouse_url", "data_dir")
LEXICON = ("lexicon_dir", "cache_dir", "lexicon_cache")
SPIKES = tuple(name for name in Settings.model_fields if name.startswith("spike_"))


class UserError(click.ClickException):
    """An error with a one-line explanation for the person at the terminal."""


@contextlib.contextmanager
def reader_may_leave() -> Iterator[None]:
    """Around the writing of a result: a reader that leaves early (`workpulse query … |
    head -1`) ends the command quietly, exit 0 as `tag` does (click said nothing and
    exited 1, failing `set -o pipefail` scripts)."""
    try:
        yield
    except BrokenPipeError:
        # the interpreter flushes stdout at exit: to nowhere, not to the closed pipe again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def result_stream() -> TextIO:
    """stdout, for a command whose result goes there; one clear line when it was closed
    at start (`>&-`: Python sets it to None, and the result vanished, exit 0, or ended in
    "'NoneType' object has no attribute 'write'")."""
    if sys.stdout is None:
        raise UserError("stdout is closed: there is nowhere to write the result")
    return sys.stdout


def _unwrap(annotation: Any) -> Any:
    """`X | None` → X."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _click_type(annotation: Any) -> Any:
    kind = _unwrap(annotation)
    if typing.get_origin(kind) is Literal:
        return click.Choice([str(v) for v in typing.get_args(kind)], case_sensitive=False)
    if kind is Path:
        return click.Path(path_type=Path)
    if kind in (int, float, bool):
        return kind
    return str


def settings_options(*names: str) -> Callable[[F], F]:
    """Add a `--flag` for each named setting. Flags have no default of their own: an unset
    flag leaves the variable or the default in charge (`settings_from`)."""
    fields = Settings.model_fields

    def decorate(func: F) -> F:
        for name in reversed(names):
            info = fields[name]
            secret = _unwrap(info.annotation) is SecretStr
            default = None if secret or info.default is None else info.default
            shown = f" [default: {default}]" if default is not None else ""
            flag = "--" + name.replace("_", "-")
            decls = [f"{flag}/--no-{flag[2:]}"] if _unwrap(info.annotation) is bool else [flag]
            func = click.option(
                *decls,
                name,
                type=None if _unwrap(info.annotation) is bool else _click_type(info.annotation),
                default=None,
                help=f"{info.description}{shown} [env: {env_name(name)}]",
            )(func)
        return func

    return decorate


def settings_from(kwargs: dict[str, Any]) -> Settings:
    """Take the settings flags out of a command's keyword arguments: defaults, then
    WORKPULSE_* variables, then the flags given. A bad value is a one-line error."""
    overrides = {k: kwargs.pop(k) for k in list(kwargs) if k in Settings.model_fields}
    try:
        return load_settings(overrides)
    except ConfigError as exc:
        raise UserError(str(exc)) from None
