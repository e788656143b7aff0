"""The one dispatch rule: Triton when every tensor is on CUDA and Triton imports, else the reference (or, for
kernels that have one, a compiled CPU loop when every tensor is on the CPU).

``NMKIT_KERNELS=ref`` forces the PyTorch reference everywhere.
"""

from __future__ import annotations

import importlib.util
import os

import torch


def triton_available() -> bool:
    return importlib.util.find_spec("triton") is not None


def reference_forced() -> bool:
    return os.environ.get("NMKIT_KERNELS", "").lower() == "ref"


def use_triton(*tensors: torch.Tensor) -> bool:
    return not reference_forced() and all(t.is_cuda for t in tensors) and triton_available()


def backend(*tensors: torch.Tensor) -> str:
    """"triton" (CUDA), "cpu" (a compiled CPU loop), or "ref" (the PyTorch reference: forced, or elsewhere)."""
    if use_triton(*tensors):
        return "triton"
    if not reference_forced() and all(t.device.type == "cpu" for t in tensors):
        return "cpu"
    return "ref"
