"""Turning ``--device auto|cpu|cuda`` into the device a run uses."""

from __future__ import annotations

from nmkit.core.errors import InputError


def resolve_device(requested: str) -> str:
    import torch

    has_cuda = torch.cuda.is_available()
    if requested == "cuda" and not has_cuda:
        raise InputError("device cuda: no CUDA device is available here; use --device cpu or auto")
    if requested == "auto":
        return "cuda" if has_cuda else "cpu"
    return requested
