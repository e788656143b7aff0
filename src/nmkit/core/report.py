"""Result records: what every run writes to ``result.json`` and prints with ``--json``."""

from __future__ import annotations

import dataclasses
import math
import platform
from importlib import metadata
from pathlib import Path

import numpy as np

import nmkit

_REPORTED_PACKAGES = ("numpy", "scipy", "numba", "torch", "triton", "typer", "rich", "pyyaml")


def package_versions() -> dict[str, str | None]:
    """Versions of Python, nmkit and the packages results depend on (read from metadata)."""
    versions: dict[str, str | None] = {"python": platform.python_version(), "nmkit": nmkit.__version__}
    for name in _REPORTED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def jsonable(value):
    """Plain, strict JSON data from dataclasses, numpy scalars/arrays, paths, tuples; NaN and infinities become
    null (strict JSON has no such numbers; :func:`non_finite_paths` says where they were)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def non_finite_paths(value, prefix: str) -> list[str]:
    """Dotted paths of the NaN/infinite numbers inside ``value`` (what :func:`jsonable` turns into null)."""
    plain = value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        plain = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(plain, dict):
        return [p for k, v in plain.items() for p in non_finite_paths(v, f"{prefix}.{k}")]
    if isinstance(plain, np.ndarray):
        plain = plain.tolist() if plain.dtype.kind == "f" else []
    if isinstance(plain, list | tuple):
        return [p for i, v in enumerate(plain) for p in non_finite_paths(v, f"{prefix}[{i}]")]
    if isinstance(plain, float | np.floating) and not math.isfinite(plain):
        return [prefix]
    return []
