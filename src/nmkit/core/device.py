"""Turning ``--device auto|cpu|cuda`` into the device a run uses."""

from __future__ import annotations

import glob
import os

from nmkit.core.errors import InputError


def _no_cuda_here() -> bool:
    """True when CUDA certainly is not usable, found without importing torch (~1.5 s): no NVIDIA driver, or
    ``CUDA_VISIBLE_DEVICES`` hides every device. False means "ask torch"."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return True
    return not (os.path.exists("/proc/driver/nvidia/version") or glob.glob("/dev/nvidia[0-9]*"))


def cuda_available() -> bool:
    if _no_cuda_here():
        return False
    import torch

    return torch.cuda.is_available()


def resolve_device(requested: str) -> str:
    has_cuda = cuda_available()
    if requested == "cuda" and not has_cuda:
        raise InputError("device cuda: no CUDA device is available here; use --device cpu or auto")
    if requested == "auto":
        return "cuda" if has_cuda else "cpu"
    return requested
