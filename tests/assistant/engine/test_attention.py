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


def test_under_cpu_bf16_autocast_attention_runs_in_fp32():
    """Training's autocast: the matmuls go bf16, attention stays fp32 (its CPU backward is slower in bf16)."""
    g = torch.Generator().manual_seed(1)
    q, k = (torch.randn(1, 2, 7, 16, generator=g) for _ in range(2))
    v = torch.randn(1, 2, 7, 8, generator=g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = sdpa(q.bfloat16(), k.bfloat16(), v, is_causal=True, scale=0.25)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, reference(q.bfloat16().float(), k.bfloat16().float(), v, 0.25), atol=1e-5, rtol=1e-5)
