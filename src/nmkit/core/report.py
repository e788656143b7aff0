"""Result records: what every run writes to ``result.json`` and prints with ``--json``."""

from __future__ import annotations

import dataclasses
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
    """Plain JSON data from dataclasses, numpy scalars/arrays, paths, tuples."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value
