"""The one dispatch rule: Triton when every tensor is on CUDA and Triton imports, else the reference.

``NMKIT_KERNELS=ref`` forces the PyTorch reference everywhere.
"""

from __future__ import annotations

import importlib.util
import os

import torch


def triton_available() -> bool:
    return importlib.util.find_spec("triton") is not None


def use_triton(*tensors: torch.Tensor) -> bool:
    if os.environ.get("NMKIT_KERNELS", "").lower() == "ref":
        return False
    return all(t.is_cuda for t in tensors) and triton_available()
