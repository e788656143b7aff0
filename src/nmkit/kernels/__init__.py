"""Triton kernels, each beside its PyTorch reference and a dispatcher (see ``dispatch.use_triton``)."""
