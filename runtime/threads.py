"""How many threads the runtime's small tensor operations run on, and how large a batch runs as one piece."""
from __future__ import annotations

import contextlib
import os

import torch

SPLIT_POSITIONS = 1 << 15   # a larger batch (rows x positions) runs as independent slices of about this size
THREADS = 1            # intra-op threads while a fast path runs (None: leave torch's setting); see intra_op_threads
WORKERS = os.cpu_count() or 1   # slices of a large batch run on this many Python threads at once
MIN_SLICE_POSITIONS = 4096      # ... when each slice has at least this many positions


@contextlib.contextmanager
def intra_op_threads(n: int | None):
    """torch's intra-op threads set to n while the block runs (n=None: unchanged).

    The fast paths run many small operations. On this project's shared 2-core CPU a second OpenMP thread made
    them 5 to 40 times slower (threads waiting on each other while other processes hold the cores), so they run
    on one thread (THREADS); a large batch runs as slices of at most SPLIT_POSITIONS positions. The dense loop
    and decoder (runtime.loop.run_loop, runtime.generate.generate) run a batch of at most SPLIT_POSITIONS
    positions on THREADS too."""
    old = torch.get_num_threads()
    if n is None or n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)

