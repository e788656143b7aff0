"""One decorator for every Triton test: marked `triton`, and skipped unless Triton is installed (the `gpu` or
`dev` extra) and has something to run on (CUDA, or CPU tensors under TRITON_INTERPRET=1)."""

import os

import pytest
import torch

from nmkit.kernels import dispatch

_runnable = pytest.mark.skipif(
    not dispatch.triton_available() or (not torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1"),
    reason="needs triton, and CUDA or TRITON_INTERPRET=1")


def triton_kernel(test):
    return pytest.mark.triton(_runnable(test))


def triton_param(function):
    """A parametrize value that runs a Triton path (lif_triton, wkv_triton), skipped like ``triton_kernel``."""
    return pytest.param(function, marks=[pytest.mark.triton, _runnable], id=function.__name__)
