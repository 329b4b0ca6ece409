"""What a loop run returns, its progress bar, its checkpoints and how a register is read: shared by the dense loop
(runtime/loop.py), the fast one (runtime/fast_loop.py) and the decoder (runtime/generate.py)."""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from hardwire.runtime.model import decode_column


@dataclass
class LoopResult:
    outputs: dict[str, list]
    steps: int
    halted: bool
    emitted: list[int] = field(default_factory=list)


@dataclass
class LoopState:
    """A loop run of one row between two passes: the steps taken, the residual [T, D] (BOS included) after them,
    and the values emitted so far. Resuming from it gives the same result as running on (the residual after a
    pass is the whole state: every register re-quantized, every temporary erased)."""
    steps: int
    residual: torch.Tensor
    emitted: list[int] = field(default_factory=list)


@dataclass
class DecodeState:
    """The native index decoder's one row between two kernel calls: the tokens generated so far, the residual row
    at the last position (its output not read yet), the proven heads' tables and flags, and the next position.
    Resuming from it gives the same tokens as decoding on: nothing else carries from one token to the next."""
    tokens: object     # int64 numpy array
    x: object          # [D] numpy, the model's dtype
    state: object      # [S] the heads' tables (index_plan's layout)
    have: object       # [F] uint8 flags
    pos: int
    done: bool = False  # the row has stopped: x's output is read already, and nothing is left to decode


@dataclass
class LongRun:
    """What a long run of one row adds: where it resumes from (a LoopState for a loop, a DecodeState for the native
    index decoder; for the other decoders the tokens generated so far are the prompt's tail), a `save` called with
    the state every `every_s` seconds (and once when the step limit stops the run), the total a progress bar's ETA
    is measured against, and the bar's label."""
    resume: LoopState | DecodeState | None = None
    save: Callable | None = None
    every_s: float = 60.0
    total: int | None = None
    desc: str = "steps"
    done: int = 0          # steps (or tokens) already taken before this run: the bar starts there
    last: float = field(default_factory=time.monotonic)

    def due(self) -> bool:
        """Whether a checkpoint is due (and if so, the clock restarts)."""
        if self.save is None or time.monotonic() - self.last < self.every_s:
            return False
        self.last = time.monotonic()
        return True


def progress_bar(total: int | None, enabled: bool | str, desc: str = "steps", initial: int = 0):
    """tqdm on stderr when wanted (steps, rate, and an ETA when the total is known); otherwise a no-op with the
    same two methods. enabled="now" shows it at once (--progress); True shows it once a run has taken 2 s."""
    if enabled:
        try:
            from tqdm import tqdm
            unit = "token" if desc == "tokens" else "instruction" if desc == "instructions" else "step"
            return tqdm(total=total, initial=initial, unit=unit, file=sys.stderr, mininterval=0.5,
                        delay=0.0 if enabled == "now" else 2.0, desc=desc, dynamic_ncols=True)
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
