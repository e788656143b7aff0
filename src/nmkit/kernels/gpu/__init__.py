"""Triton launchers and kernels: imported only where a CUDA tensor (or a test under TRITON_INTERPRET=1)
meets a kernel, so a CPU install needs no Triton."""
