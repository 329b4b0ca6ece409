"""Hard attention: a head's output read off the top-scoring keys where a margin proves the softmax equals it.

Per query, from the scores: where every other present key is at least M = ln T + ln(1/u) + 1 below the top (up
to ties within the rounding bound tau), the losers' softmax weights sum to less than u, so the head's output is
the exact mean of the tied keys' values; elsewhere the softmax. docs/performance.md gives the argument.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from hardwire.runtime.context import Context


def attention_weights(scores: torch.Tensor, tau: torch.Tensor | None, ctx: Context,
                      pad: torch.Tensor | None, u: float) -> torch.Tensor:
    """Softmax weights, or the hard ones where a query's margin holds ([B, G, Tq, T]; tau: [G, 1, 1]).
    Under ctx.spec the margins are assumed and their check goes into ctx.ok (pad: query rows not checked)."""
    if tau is None:
        return torch.softmax(scores, -1)
    tied, n, ok = margins(scores, tau, scores.shape[-1], u)
    hard = tied.to(scores.dtype) / n.clamp_min(1)[..., None].to(scores.dtype)
    if ctx.spec:
        ctx.ok.append((ok if pad is None else ok | pad[:, None, :]).all())
        return hard
    ctx.stats["hard_queries"] += int(ok.sum())
    ctx.stats["soft_queries"] += int((~ok).sum())
    return torch.where(ok[..., None], hard, torch.softmax(scores, -1))


def margins(scores: torch.Tensor, tau: torch.Tensor, t: int, u: float):
    """(tied, count, ok) per query: the keys within tau of the top score, and whether every other present
    key is at least M = ln T + ln(1/u) + 1 below it (so that T exp(-M) < u)."""
    big_m = math.log(max(t, 2)) - math.log(u) + 1
    top = scores.amax(-1, keepdim=True)
    tied = scores >= top - tau
    near = scores > top - big_m
    n = tied.sum(-1)
    ok = (near == tied).all(-1) & (n >= 1) & (tau < big_m / 4).view(1, -1, 1)
    return tied, n, ok
