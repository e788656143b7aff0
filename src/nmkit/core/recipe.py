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

FLAGS = "flags"
"""The source name of the layer built from command-line flags (the only layer that may trust code or write
outside the recipe's folder)."""

MAX_RECIPE_BYTES = 1 << 20
MAX_DEPTH = 64
MAX_NODES = 100_000
"""Limits on a recipe's size, nesting and values after alias expansion (a YAML alias bomb is a few hundred
bytes that expand to billions of values)."""

MAX_INT = 2**31 - 1
MAX_FLOAT = 1e15
"""Default magnitude limits for numeric fields that declare no bound of their own."""


def option(default: Any = None, help: str = "", *, ge=None, gt=None, le=None, lt=None, cli_only: bool = False,
           writes: bool = False) -> Any:
    """A config field with a help line and optional numeric bounds (checked on load).

    ``cli_only``: only a command-line flag may set it (switches that let a file run code); it is never written
    into a run's ``recipe.yaml``. ``writes``: a path nmkit writes to; from a recipe or ``--set`` it must stay
    inside the recipe's folder (flags and ``--set``, typed by the person running nmkit, may write anywhere).
    """
    meta = {"help": help, "ge": ge, "gt": gt, "le": le, "lt": lt, "cli_only": cli_only, "writes": writes}
    if isinstance(default, list | dict):  # a fresh copy per instance
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def parse_set_items(items: Iterable[str]) -> dict:
    """``["a.b=3", "c=x"]`` -> ``{"a": {"b": 3}, "c": "x"}``; values are parsed as YAML."""
    tree: dict = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {show(item)}: expected KEY=VALUE, e.g. --set top=5")
        value = load_yaml(text, f"--set {show(key)}")
        node = tree
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: '{part}' was already given a plain value")
        node[parts[-1]] = value
    return tree


def read_recipe(path: Path) -> dict:
    """Read a recipe file into a mapping (YAML safe-load: data only, bounded size, depth and expansion)."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_RECIPE_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"recipe {path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"recipe {path}: is a folder, expected a YAML file") from None
    except OSError as exc:
        raise InputError(f"recipe {path}: cannot be read ({exc.strerror})") from None
    if len(raw) > MAX_RECIPE_BYTES:
        raise InputError(f"recipe {path}: larger than {MAX_RECIPE_BYTES // 1024} KiB; a recipe is a small YAML file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"recipe {path}: not UTF-8 text (byte {exc.start})") from None
    data = load_yaml(text, f"recipe {path}")
    if not isinstance(data, dict):
        raise InputError(f"recipe {path}: expected a mapping of keys to values, found {_kind(data)}")
    return data


def load_yaml(text: str, source: str) -> Any:
    """Parse YAML as plain data, refusing documents nested deeper than :data:`MAX_DEPTH` or holding more
    than :data:`MAX_NODES` values once aliases are expanded (checked on the node graph, before any value
    is built)."""
    import yaml  # here, not at the top: `nmkit --help` never needs it

    loader = None
    try:
        loader = _bounded_loader()(text)
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, 1, {}, source)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        raise InputError(f"{source}: not valid YAML{where} ({_shorten(str(problem))})") from None
    except (ValueError, TypeError, OverflowError):  # e.g. an integer of more than 4300 digits
        raise InputError(f"{source}: a value cannot be read as plain data (a number with thousands of digits?)") \
            from None
    finally:
        if loader is not None:
            loader.dispose()


def _bounded_loader() -> type:
    import yaml

    class BoundedLoader(yaml.SafeLoader):
        depth = 0

        def compose_node(self, parent, index):
            self.depth += 1
            try:
                if self.depth > MAX_DEPTH:
                    raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels",
                                                      self.peek_event().start_mark)
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    return BoundedLoader


def _expanded_size(node, depth: int, sizes: dict, source: str) -> int:
    """Values under ``node`` with every alias expanded; raises past the limits or on a cycle."""
    key = id(node)
    if key in sizes:
        size, height = sizes[key]
        if size is None:
            raise InputError(f"{source}: an alias refers to a value that contains it (a cycle)")
    else:
        sizes[key] = (None, 0)
        size, height = 1, 0
        children = node.value if isinstance(node.value, list) else []
        for child in children:
            for part in child if isinstance(child, tuple) else (child,):
                if depth >= MAX_DEPTH:
                    raise InputError(f"{source}: values nested deeper than {MAX_DEPTH} levels (after aliases)")
                part_size = _expanded_size(part, depth + 1, sizes, source)
                size, height = size + part_size, max(height, sizes[id(part)][1] + 1)
                if size > MAX_NODES:
                    raise InputError(f"{source}: more than {MAX_NODES:,} values once aliases are expanded "
                                     f"(an alias bomb?)")
        sizes[key] = (size, height)
    if depth + height > MAX_DEPTH:
        raise InputError(f"{source}: values nested deeper than {MAX_DEPTH} levels (after aliases)")
    return size


def build_config(schema: type, layers: Iterable[tuple[str, Mapping, Path | None]]):
    """Build ``schema`` from ``(source, raw mapping, base_dir)`` layers, later layers winning."""
    merged: dict = {}
    for source, raw, base_dir in layers:
        _merge_into(merged, coerce_mapping(schema, raw, source=source, base_dir=base_dir))
    return _instantiate(schema, merged, "")


def field_names(schema: type) -> set[str]:
    return {f.name for f in dataclasses.fields(schema)}


def to_plain(config, relative_to: Path | None = None) -> dict:
    """A config as plain YAML/JSON data: paths as strings (relative to ``relative_to`` where they lie inside
    it, so a run folder's recipe.yaml moves with the folder), command-line-only fields left out."""
    return {f.name: _plain(getattr(config, f.name), relative_to) for f in dataclasses.fields(config)
            if not f.metadata.get("cli_only")}


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
            close = difflib.get_close_matches(_shorten(str(key)), list(fields), n=1, cutoff=0.6)
            hint = f"did you mean '{prefix}{close[0]}'?" if close else f"valid keys: {', '.join(sorted(fields))}"
            raise ConfigError(f"{source}: unknown key {show(key)} at '{_shorten(dotted)}'; {hint}")
        meta = fields[key].metadata
        if meta.get("cli_only") and source != FLAGS:
            flag = "--" + key.replace("_", "-")
            raise ConfigError(f"{source}: field '{dotted}' can only be given on the command line ({flag}): a recipe "
                              f"or --set must not switch on running code from a file")
        ctx = _Ctx(source, dotted, base_dir, writes=bool(meta.get("writes")) and source.startswith("recipe "))
        out[key] = _coerce(hints[key], value, ctx)
        _check_bounds(meta, out[key], ctx)
    return out


@dataclasses.dataclass(frozen=True)
class _Ctx:
    source: str
    path: str
    base_dir: Path | None
    writes: bool = False  # an output path from a recipe file: confined to base_dir

    def fail(self, expected: str, value: Any) -> ConfigError:
        return ConfigError(f"{self.source}: field '{self.path}' expects {expected}, found {show(value)}")


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
        items = [_coerce(item_tp, v, dataclasses.replace(ctx, path=f"{ctx.path}[{i}]")) for i, v in enumerate(value)]
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
    if number is None:
        raise ctx.fail("a number", value)
    if not math.isfinite(number):
        raise ctx.fail("a finite number", value)
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
    text = str(value)
    if len(text) > 4096 or any(ord(c) < 32 for c in text):
        raise ctx.fail("a file path (at most 4096 characters, no control characters)", value)
    if text == "-":
        return Path("-")  # standard input/output
    if ctx.writes:
        return _confined(Path(text), ctx)
    path = Path(text).expanduser()
    if not path.is_absolute() and ctx.base_dir is not None:
        path = ctx.base_dir / path
    return path


def _confined(path: Path, ctx: _Ctx) -> Path:
    """An output path from a recipe file: relative, and inside ``base_dir`` once links are resolved."""
    base = (ctx.base_dir or Path.cwd()).resolve()
    resolved = (base / path).resolve()
    if path.is_absolute() or not resolved.is_relative_to(base):
        raise ctx.fail(f"a path inside {base} (a recipe writes only beside itself; give the option on the "
                       f"command line to write elsewhere)", str(path))
    return base / path


_SCALARS = {bool: _as_bool, int: _as_int, float: _as_float, str: _as_str, Path: _as_path}


def _as_number(value) -> float | None:
    """A float, inf for an int beyond the float range (so it fails as "not finite"), None when not a number."""
    if isinstance(value, int):
        return float(value) if abs(value) < 2**1023 else math.inf if value > 0 else -math.inf
    if isinstance(value, float):
        return value
    if isinstance(value, str) and len(value) <= 40:
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _check_bounds(meta: Mapping, value: Any, ctx: _Ctx) -> None:
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_bounds(meta, item, dataclasses.replace(ctx, path=f"{ctx.path}[{i}]"))
        return
    if not isinstance(value, int | float) or isinstance(value, bool):
        return
    limit = MAX_INT if isinstance(value, int) else MAX_FLOAT
    if meta.get("le") is None and meta.get("lt") is None and value > limit:
        raise ctx.fail(f"a value <= {limit:g}", value)
    if meta.get("ge") is None and meta.get("gt") is None and value < -limit:
        raise ctx.fail(f"a value >= {-limit:g}", value)
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


def _plain(value, relative_to: Path | None):
    if dataclasses.is_dataclass(value):
        return to_plain(value, relative_to)
    if isinstance(value, dict):
        return {k: _plain(v, relative_to) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, relative_to) for v in value]
    if isinstance(value, Path):
        if relative_to is not None and value.is_absolute() and value.is_relative_to(relative_to.resolve()):
            return str(value.relative_to(relative_to.resolve()))
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


def show(value) -> str:
    """A short, one-line picture of a value (never the whole of a large or nested one)."""
    import reprlib

    shower = reprlib.Repr()
    shower.maxlevel, shower.maxlist, shower.maxdict, shower.maxstring, shower.maxother, shower.maxlong = \
        2, 4, 4, 50, 50, 40
    try:
        return _shorten(shower.repr(value))
    except ValueError:  # an integer too long to print
        return "a number with thousands of digits"


def _shorten(text: str, limit: int = 60) -> str:
    text = "".join(c if c.isprintable() else "?" for c in text[: limit * 2])
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclasses.dataclass(frozen=True)
class CommonConfig:
    """Fields every command has: the random seed and the device to run on."""

    seed: int = option(0, "random seed: every random choice of the run derives from it", ge=0, le=2**32 - 1)
    device: Literal["auto", "cpu", "cuda"] = option("auto", "where to compute: auto picks cuda when present")


@dataclasses.dataclass(frozen=True)
class BatchConfig(CommonConfig):
    """The common fields plus where a command's batch of independent tasks runs (:mod:`nmkit.core.executor`)."""

    executor: str | None = option(None, "where batch tasks run: local, local:N, dask://HOST:PORT or "
                                        "dask-scheduler-file:PATH (default: NMKIT_EXECUTOR, else local with one "
                                        "worker process per thread of the budget)")

    def executor_spec(self, workers: int | None = None):
        """The :class:`~nmkit.core.executor.ExecutorSpec` of ``executor``, or ``local:workers`` when given."""
        from nmkit.core import executor

        return executor.ExecutorSpec("local", workers=workers) if workers else executor.parse(self.executor)
