"""Command-line options derived from the typed configs, so a default lives in one place: the dataclass.

`config_options(EmbedConfig)` adds one `--option` per field to a command — its default and type from the field, its
help from the comment beside it — and hands the command the built config. A field without a comment gets its name.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import re
import types
import typing
from typing import Optional

import typer


def field_comments(cls) -> dict[str, str]:
    """field name → the comment written beside it in the dataclass body."""
    out = {}
    for line in inspect.getsource(cls).splitlines():
        m = re.match(r"\s+(\w+)\s*:[^#]*#\s*(.+)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


def _cli_type(hint):
    """int | None → Optional[int]; other hints as they are."""
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        inner = [a for a in args if a is not type(None)]
        return Optional[inner[0]] if len(inner) == 1 else str
    return hint


def config_parameters(cls, exclude=(), names: dict[str, str] | None = None, help: dict[str, str] | None = None):
    """inspect.Parameters (typer options) for the fields of dataclass `cls`."""
    hints = typing.get_type_hints(cls)
    comments = {**field_comments(cls), **(help or {})}
    names = names or {}
    params = []
    for f in dataclasses.fields(cls):
        if f.name in exclude:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        flag = "--" + names.get(f.name, f.name).replace("_", "-")
        hint = _cli_type(hints[f.name])
        decls = [f"{flag}/--no-{flag[2:]}"] if hint is bool else [flag]
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, annotation=hint,
                                        default=typer.Option(default, *decls, help=comments.get(f.name, f.name))))
    return params


def config_options(cls, param: str = "config", exclude=(), names: dict[str, str] | None = None,
                   help: dict[str, str] | None = None, fixed: dict | None = None):
    """Decorator: the command gets `param=cls(**options)`; `fixed` fields come from elsewhere (other arguments)."""
    extra = config_parameters(cls, exclude, names, help)
    field_names = [p.name for p in extra]

    def decorate(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            values = {n: kwargs.pop(n) for n in field_names}
            try:
                kwargs[param] = cls(**values, **(fixed or {}))
            except (TypeError, ValueError) as e:
                raise typer.BadParameter(str(e)) from None
            return func(*args, **kwargs)

        sig = inspect.signature(func)
        kept = [p for p in sig.parameters.values() if p.name != param]
        wrapper.__signature__ = sig.replace(parameters=kept + extra)
        return wrapper

    return decorate
