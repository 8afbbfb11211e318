"""``attention.sdpa``: MLA's narrower value heads through PyTorch's SDPA, same result as the math."""

from __future__ import annotations

import pytest
import torch

from assistant.engine.attention import sdpa


def reference(q, k, v, scale):
    """Causal softmax(q k^T * scale) v, written out."""
    scores = (q @ k.transpose(-1, -2)) * scale
    t, s = scores.shape[-2:]
    scores = scores.masked_fill(torch.ones(t, s, dtype=torch.bool).triu(1), float("-inf"))
    return scores.softmax(-1) @ v


@pytest.mark.parametrize("v_dim", [8, 24])  # narrower than q/k's 24 (padded), and equal (as is)
def test_sdpa_matches_the_written_out_attention_and_its_gradients(v_dim):
    g = torch.Generator().manual_seed(0)
    q, k = (torch.randn(2, 3, 9, 24, generator=g, requires_grad=True) for _ in range(2))
    v = torch.randn(2, 3, 9, v_dim, generator=g, requires_grad=True)
    out = sdpa(q, k, v, is_causal=True, scale=0.3)
    want = reference(q, k, v, 0.3)
    assert out.shape == (2, 3, 9, v_dim)
    torch.testing.assert_close(out, want, atol=1e-5, rtol=1e-5)
    grads = torch.autograd.grad(out.square().sum(), (q, k, v))
    for got, expected in zip(grads, torch.autograd.grad(want.square().sum(), (q, k, v))):
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
