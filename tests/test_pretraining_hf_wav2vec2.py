"""The objective's scoring (pretraining_hf_wav2vec2): the contrastive candidates' cosines without an (N, K, P)
tensor."""

import pytest
import torch
import torch.nn.functional as F

from hf_wav2vec2.pretraining_hf_wav2vec2 import cosine_scores


def _unit_rows(n, m, dim, k, seed=0):
    g = torch.Generator().manual_seed(seed)
    p = F.normalize(torch.randn(n, dim, generator=g, dtype=torch.float64), dim=-1)
    t = F.normalize(torch.randn(m, dim, generator=g, dtype=torch.float64), dim=-1)
    return p.requires_grad_(), t.requires_grad_(), torch.randint(0, m, (n, k), generator=g)


def _saved_numels(fn):
    sizes = []
    with torch.autograd.graph.saved_tensors_hooks(lambda x: sizes.append(x.numel()) or x, lambda x: x):
        out = fn()
    return out, sizes


@pytest.mark.parametrize("max_block", [1 << 22, 50])  # one block, and blocks of one row (50 < M)
def test_scores_and_gradients_equal_the_gathered_products(max_block):
    p, t, columns = _unit_rows(30, 60, 32, 21)
    scores, saved = _saved_numels(lambda: cosine_scores(p, t, columns, max_block=max_block))
    reference = torch.einsum("np,njp->nj", p, t[columns])
    torch.testing.assert_close(scores, reference, rtol=0, atol=1e-12)
    weights = torch.randn_like(scores)
    grads = torch.autograd.grad((scores * weights).sum(), (p, t))
    expected = torch.autograd.grad((reference * weights).sum(), (p, t))
    for got, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    # nothing of size N x J x P (the gather's) is kept for backward: at most the targets and the similarity matrix
    assert (
        30 * 21 * 32 not in saved and max(saved) == 60 * 32 and sum(s for s in saved if s != 60 * 32) < 30 * 21 * 32 / 2
    )


def test_a_very_large_target_set_falls_back_to_the_gather():
    p, t, columns = _unit_rows(4, 2000, 8, 3)  # 4 x M > J x P: the (N, M) matrix would be the larger
    scores, saved = _saved_numels(lambda: cosine_scores(p, t, columns))
    torch.testing.assert_close(scores, torch.einsum("np,njp->nj", p, t[columns]), rtol=0, atol=1e-12)
    assert 4 * 3 * 8 in saved
