"""Radix histograms for the global pruning threshold: the Triton kernel (under TRITON_INTERPRET=1 on CPU, see
conftest) equals the PyTorch reference, and the histograms order like the floats they count."""

import pytest
import torch

from nmkit.kernels.magnitude_histogram import radix_histogram_ref
from tests.kernels.marks import triton_kernel


@pytest.mark.parametrize("n", [1, 1000, 3001])
@triton_kernel
def test_triton_histograms_equal_the_reference(n):
    from nmkit.kernels.gpu.magnitude_histogram import radix_histogram_triton

    generator = torch.Generator().manual_seed(n)
    scores = torch.randn(n, generator=generator).abs() * 10.0 ** torch.randint(-3, 3, (n,), generator=generator)
    scores[: n // 10] = 0.0
    high = radix_histogram_ref(scores)
    assert torch.equal(radix_histogram_triton(scores, block=256), high)
    busiest = int(high.argmax())
    assert torch.equal(radix_histogram_triton(scores, busiest, block=256), radix_histogram_ref(scores, busiest))
    assert int(high.sum()) == n
    signed = scores * torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    assert torch.equal(radix_histogram_triton(signed, absolute=True, block=256), high)
    assert torch.equal(radix_histogram_ref(signed, busiest, absolute=True), radix_histogram_ref(scores, busiest))


def test_high_bins_order_like_the_values():
    values = torch.tensor([0.0, 1e-30, 1e-3, 0.5, 1.0, 3.0e38])
    bins = [int(radix_histogram_ref(v.view(1)).argmax()) for v in values]
    assert bins == sorted(bins) and len(set(bins)) == len(bins)
