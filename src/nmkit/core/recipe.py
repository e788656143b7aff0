"""Recipes: typed, frozen dataclass configs built from layers of plain data.

Precedence is defaults < recipe file < flags < ``--set key=value``. Each layer is checked against the
schema on its own, so that a relative path resolves against the folder of the file it came from and
every error names where the bad value came from; the checked layers are then merged and the config
is built. Recipes hold data only: nothing in a recipe can name code to run.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, Union

from nmkit.core.errors import ConfigError, InputError

META_KEYS = ("command", "description")
"""Top-level recipe keys that are not config fields."""


def option(default: Any = None, help: str = "", *, ge=None, gt=None, le=None, lt=None) -> Any:
    """A config field with a help line and optional numeric bounds (checked on load)."""
    meta = {"help": help, "ge": ge, "gt": gt, "le": le, "lt": lt}
    if isinstance(default, list | dict):  # a fresh copy per instance
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def parse_set_items(items: Iterable[str]) -> dict:
    """``["a.b=3", "c=x"]`` -> ``{"a": {"b": 3}, "c": "x"}``; values are parsed as YAML."""
    import yaml  # here, not at the top: `nmkit --help` never needs it

    tree: dict = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set top=5")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {key}: value {text!r} is not valid YAML ({exc.problem})") from None
        node = tree
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: '{part}' was already given a plain value")
        node[parts[-1]] = value
    return tree


def read_recipe(path: Path) -> dict:
    """Read a recipe file into a mapping (YAML safe-load: data only)."""
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"recipe {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"recipe {path}: cannot be read ({exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise InputError(f"recipe {path}: not valid YAML{where} ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise InputError(f"recipe {path}: expected a mapping of keys to values, found {_kind(data)}")
    return data


def build_config(schema: type, layers: Iterable[tuple[str, Mapping, Path | None]]):
    """Build ``schema`` from ``(source, raw mapping, base_dir)`` layers, later layers winning."""
    merged: dict = {}
    for source, raw, base_dir in layers:
        _merge_into(merged, coerce_mapping(schema, raw, source=source, base_dir=base_dir))
    return _instantiate(schema, merged, "")


def to_plain(config) -> dict:
    """A config as plain YAML/JSON data (paths as strings)."""
    return _plain(dataclasses.asdict(config))


# -- coercion --------------------------------------------------------------------------------------


def coerce_mapping(schema: type, raw: Mapping, *, source: str, base_dir: Path | None, prefix: str = "") -> dict:
    """Check one layer against ``schema``; return the typed (partial) mapping."""
    if not isinstance(raw, Mapping):
        where = f"'{prefix[:-1]}'" if prefix else "the recipe"
        raise ConfigError(f"{source}: {where} must be a mapping of keys to values, found {_kind(raw)}")
    fields = {f.name: f for f in dataclasses.fields(schema)}
    hints = typing.get_type_hints(schema)
    out = {}
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.6)
            hint = f"did you mean '{prefix}{close[0]}'?" if close else f"valid keys: {', '.join(sorted(fields))}"
            raise ConfigError(f"{source}: unknown key '{key}' at '{dotted}'; {hint}")
        ctx = _Ctx(source, dotted, base_dir)
        out[key] = _coerce(hints[key], value, ctx)
        _check_bounds(fields[key].metadata, out[key], ctx)
    return out


@dataclasses.dataclass(frozen=True)
class _Ctx:
    source: str
    path: str
    base_dir: Path | None

    def fail(self, expected: str, value: Any) -> ConfigError:
        return ConfigError(f"{self.source}: field '{self.path}' expects {expected}, found {_show(value)}")


def _coerce(tp: Any, value: Any, ctx: _Ctx) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return _coerce_union(typing.get_args(tp), value, ctx)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value in choices:
            return value
        close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ctx.fail(f"one of {', '.join(map(str, choices))}{hint}", value)
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ctx.fail("a list", value)
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        items = [_coerce(item_tp, v, _Ctx(ctx.source, f"{ctx.path}[{i}]", ctx.base_dir)) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if dataclasses.is_dataclass(tp):
        return coerce_mapping(tp, value, source=ctx.source, base_dir=ctx.base_dir, prefix=f"{ctx.path}.")
    coerce_scalar = _SCALARS.get(tp)
    if coerce_scalar is None:
        return value  # Any
    return coerce_scalar(value, ctx)


def _coerce_union(args: tuple, value: Any, ctx: _Ctx) -> Any:
    if value is None:
        if type(None) in args:
            return None
        raise ctx.fail(_describe(args), value)
    errors = []
    for arm in (a for a in args if a is not type(None)):
        try:
            return _coerce(arm, value, ctx)
        except ConfigError as exc:
            errors.append(exc)
    if len(errors) == 1:
        raise errors[0]
    raise ctx.fail(_describe(args), value)


def _as_bool(value, ctx):
    if isinstance(value, bool):
        return value
    raise ctx.fail("true or false", value)


def _as_int(value, ctx):
    if isinstance(value, bool):
        raise ctx.fail("an integer", value)
    if isinstance(value, int):
        return value
    number = _as_number(value)
    if number is not None and math.isfinite(number) and number == int(number):
        return int(number)  # accepts 1e6 and 1000000.0
    raise ctx.fail("an integer", value)


def _as_float(value, ctx):
    if isinstance(value, bool):
        raise ctx.fail("a number", value)
    number = _as_number(value)
    if number is None or math.isnan(number):
        raise ctx.fail("a number", value)
    return number


def _as_str(value, ctx):
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # YAML reads `pattern: 0110` as a number
    raise ctx.fail("a string", value)


def _as_path(value, ctx):
    if not isinstance(value, str | Path) or str(value) == "":
        raise ctx.fail("a file path", value)
    if str(value) == "-":
        return Path("-")  # standard input/output
    path = Path(value).expanduser()
    if not path.is_absolute() and ctx.base_dir is not None:
        path = ctx.base_dir / path
    return path


_SCALARS = {bool: _as_bool, int: _as_int, float: _as_float, str: _as_str, Path: _as_path}


def _as_number(value) -> float | None:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _check_bounds(meta: Mapping, value: Any, ctx: _Ctx) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return
    for key, ok, words in (
        ("ge", lambda v, b: v >= b, ">="),
        ("gt", lambda v, b: v > b, ">"),
        ("le", lambda v, b: v <= b, "<="),
        ("lt", lambda v, b: v < b, "<"),
    ):
        bound = meta.get(key)
        if bound is not None and not ok(value, bound):
            raise ctx.fail(f"a value {words} {bound}", value)


# -- merging and building --------------------------------------------------------------------------


def _merge_into(target: dict, layer: Mapping) -> None:
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge_into(target[key], value)
        else:
            target[key] = value


def _instantiate(schema: type, values: Mapping, prefix: str):
    hints = typing.get_type_hints(schema)
    kwargs = {}
    for name, value in values.items():
        sub = _dataclass_in(hints[name])
        kwargs[name] = _instantiate(sub, value, f"{prefix}{name}.") if sub and isinstance(value, dict) else value
    try:
        return schema(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"config{' ' + prefix[:-1] if prefix else ''}: {exc}") from None


def _dataclass_in(tp: Any) -> type | None:
    if dataclasses.is_dataclass(tp):
        return tp
    for arm in typing.get_args(tp):
        if dataclasses.is_dataclass(arm):
            return arm
    return None


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


# -- messages --------------------------------------------------------------------------------------


def _describe(args: tuple) -> str:
    names = {bool: "true/false", int: "an integer", float: "a number", str: "a string", Path: "a file path"}
    parts = []
    for arm in args:
        if arm is type(None):
            parts.append("null")
        elif typing.get_origin(arm) is Literal:
            parts.append("one of " + ", ".join(map(str, typing.get_args(arm))))
        elif dataclasses.is_dataclass(arm):
            parts.append("a mapping")
        else:
            parts.append(names.get(arm, getattr(arm, "__name__", str(arm))))
    return " or ".join(parts)


def _kind(value) -> str:
    return "nothing" if value is None else f"a {type(value).__name__}"


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclasses.dataclass(frozen=True)
class CommonConfig:
    """Fields every command has: the random seed and the device to run on."""

    seed: int = option(0, "random seed: every random choice of the run derives from it", ge=0)
    device: Literal["auto", "cpu", "cuda"] = option("auto", "where to compute: auto picks cuda when present")
