"""What a loop run returns, its progress bar and how a register is read: shared by the dense loop (runtime/loop.py)
and the fast one (runtime/fast_loop.py), which each import this and not the other."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

import torch
from hardwire.runtime.model import decode_column


@dataclass
class LoopResult:
    outputs: dict[str, list]
    steps: int
    halted: bool
    emitted: list[int] = field(default_factory=list)


def progress_bar(total: int, enabled: bool):
    """tqdm when installed and wanted; otherwise a no-op with the same two methods."""
    if enabled:
        try:
            from tqdm import tqdm
            return tqdm(total=None, unit="step", file=sys.stderr, mininterval=0.5, delay=2.0,
                        desc=f"looping (limit {total:,})")
        except ImportError:
            pass

    class Null:
        def update(self, n: int) -> None:
            pass

        def close(self) -> None:
            pass
    return Null()


def decode_register(x: torch.Tensor, reg: dict) -> list:
    """One register's value at every position of one row."""
    return decode_column(x[:, reg["dims"]], reg)
