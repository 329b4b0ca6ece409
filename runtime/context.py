"""What every layer of one batch shares on the fast paths (runtime/fast.py and the kernels it calls)."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Context:
    """What every layer of one batch shares: its shape, the present keys and the run-time switches."""
    b: int
    t: int
    key_off: torch.Tensor | None  # [B, 1, 1, T] keys absent (causal: [B, 1, T, T]); None: every key present
    pad: torch.Tensor             # [B, T] positions beyond each row's length
    spread: torch.Tensor          # [T] = 0, 1, 1, ..., 1
    hard: bool = True             # try the hard-attention path
    spec: bool = False            # assume every margin holds; the checks go into `ok`
    ok: list = field(default_factory=list)
    stats: dict = field(default_factory=lambda: {"hard_queries": 0, "soft_queries": 0})
    cache: dict = field(default_factory=dict)   # loop-invariant products and gathers of this batch
