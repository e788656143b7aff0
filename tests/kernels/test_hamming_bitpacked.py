"""The Triton kernel equals its PyTorch reference (under TRITON_INTERPRET=1 on CPU, see conftest)."""

import numpy as np
import pytest
import torch

from nmkit.kernels import dispatch
from nmkit.kernels.hamming_bitpacked import mismatch_counts, mismatch_counts_ref, pack_bitplanes
from tests.kernels.marks import triton_kernel

SHAPES = [(1, 1, 2), (40, 7, 4), (100, 32, 2), (129, 33, 26), (300, 64, 256), (257, 100, 3), (1000, 31, 1000)]


def _device():
    return "cuda" if torch.cuda.is_available() else "cpu"


@triton_kernel
@pytest.mark.parametrize(("n", "m", "symbols"), SHAPES)
@pytest.mark.parametrize("wildcard", [-1, 1])
def test_triton_kernel_equals_reference(n, m, symbols, wildcard):
    from nmkit.kernels.gpu.hamming_bitpacked import mismatch_counts_triton

    generator = torch.Generator().manual_seed(n * 7 + m)
    text = torch.randint(0, symbols, (n,), generator=generator).to(_device())
    pattern = torch.randint(0, symbols, (m,), generator=generator).to(_device())
    expected = mismatch_counts_ref(text, pattern, wildcard)
    torch.testing.assert_close(mismatch_counts_triton(text, pattern, wildcard), expected, rtol=0, atol=0)


def test_reference_matches_definition():
    text = torch.tensor([0, 1, 2, 0, 1, 2, 2])
    pattern = torch.tensor([0, 1, 2])
    torch.testing.assert_close(mismatch_counts_ref(text, pattern), torch.tensor([0, 3, 3, 0, 2], dtype=torch.int32))


@pytest.mark.parametrize("bits", [1, 2, 9])
def test_pack_bitplanes_round_trips(bits):
    codes = torch.randint(0, 2**bits, (77,), generator=torch.Generator().manual_seed(bits))
    packed = pack_bitplanes(codes, bits, words=4).numpy().view(np.uint32)
    unpacked = np.unpackbits(packed.view(np.uint8), bitorder="little").reshape(bits, -1)[:, :77]
    rebuilt = (unpacked.astype(np.int64) << np.arange(bits)[:, None]).sum(0)
    np.testing.assert_array_equal(rebuilt, codes.numpy())


def test_dispatch_uses_reference_for_cpu_tensors_and_when_forced(monkeypatch):
    cpu = torch.zeros(3)
    assert not dispatch.use_triton(cpu)
    monkeypatch.setenv("NMKIT_KERNELS", "ref")
    assert not dispatch.use_triton(cpu)
    torch.testing.assert_close(mismatch_counts(torch.tensor([1, 2, 1]), torch.tensor([1])),
                               torch.tensor([0, 1, 0], dtype=torch.int32))
