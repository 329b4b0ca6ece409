"""Memory a batch will take, estimated before it runs: batches are cut to fit the memory available, and a run
whose single input does not fit is refused with the estimate (issue 17: a check killed at 15.9 GB).

The estimate follows what a pass holds at once: a few copies of the residual stream [B, T, D], the packed
queries, keys and values of the widest layer, the scores (all of them, or chunks of model.ATTENTION_BYTES
and at least one query per row), the MLP's hidden units (likewise, chunks of model.MLP_BYTES), the decoded
columns, and for a generating model its KV cache. Weights are already loaded when the estimate is made, so they
are not counted.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from hardwire.compiler.core.errors import HardwireError

RESIDUAL_COPIES = 4     # x, x + attention, the MLP's sum, the decoded columns' copy
HEADROOM = 0.5          # the share of the memory available a batch may take (the interpreter and allocator need some)
BUDGET_ENV = "HARDWIRE_MEMORY_BUDGET"   # bytes: overrides the budget taken from the machine
TOKEN_BYTES = 56        # a generated token: the native kernel's int64 buffer and the list or array it returns


def available_bytes(device: str = "cpu") -> int:
    """Memory free for a run: the GPU's free memory on cuda, else MemAvailable from /proc/meminfo (else the
    physical pages os.sysconf reports available)."""
    if str(device).startswith("cuda"):
        import torch
        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 34


def budget_bytes(device: str = "cpu") -> int:
    """The bytes one batch may take: $HARDWIRE_MEMORY_BUDGET when set, else HEADROOM of what is available."""
    given = os.environ.get(BUDGET_ENV)
    if given:
        try:
            return max(1, int(given))
        except ValueError:
            raise HardwireError(f"${BUDGET_ENV} must be a number of bytes, got {given!r}") from None
    return int(available_bytes(device) * HEADROOM)


@dataclass
class Estimate:
    """Bytes a pass over `rows` inputs of `positions` positions takes: `per_row` for each, plus the scores and
    hidden units, each held in chunks of at most `scores_cap` and `hidden_cap` bytes."""
    per_row: int
    scores_per_row: int
    hidden_per_row: int
    scores_cap: int
    hidden_cap: int
    positions: int

    def bytes(self, rows: int) -> int:
        return (rows * self.per_row + min(self.scores_cap, rows * self.scores_per_row)
                + min(self.hidden_cap, rows * self.hidden_per_row))


def estimate(model, positions: int | None = None) -> Estimate:
    """The memory of one pass of `model` over inputs of `positions` positions (default: max_len + 1, BOS
    included), a generating model's KV cache included."""
    from hardwire.runtime.model import ATTENTION_BYTES, MLP_BYTES
    cfg = model.config
    t = positions or cfg["max_len"] + 1
    size = next(iter(model.w.values())).element_size()
    d = cfg["d_model"]
    qkv = max([4 * layer["heads"] * layer["d_head"] for layer in cfg["layers"]], default=0)
    heads = max([layer["heads"] for layer in cfg["layers"]], default=0)
    mlp = max([layer["d_mlp"] for layer in cfg["layers"]], default=0)
    per_row = t * (RESIDUAL_COPIES * d + qkv + 2 * len(cfg["layers"])) + heads * t + mlp   # + a query, a unit row
    if "generate" in cfg:
        per_row += sum(2 * layer["heads"] * layer["d_head"] for layer in cfg["layers"]) * t
    return Estimate(per_row * size, heads * t * t * size, t * mlp * size, ATTENTION_BYTES, 2 * MLP_BYTES, t)


def gigabytes(n: int) -> str:
    return f"{n / 1e9:.3g} GB" if n >= 1e8 else f"{n / 1e6:.3g} MB"


def rows_that_fit(model, most: int, budget: int | None = None, what: str = "running",
                  fix: str = "lower max_len or simplify the program") -> int:
    """How many inputs (at most `most`) one batch may hold within `budget` bytes (default: budget_bytes);
    HardwireError with the estimate (and `fix`, what to do about it) when not even one fits."""
    est = estimate(model)
    if budget is None:
        budget = budget_bytes(str(next(iter(model.w.values())).device))
    if est.bytes(1) > budget:
        cfg = model.config
        raise HardwireError(f"{what} {cfg['program']} needs about {gigabytes(est.bytes(1))} for one input of "
                            f"{cfg['max_len']} tokens (d_model {cfg['d_model']}), more than the "
                            f"{gigabytes(budget)} of memory it may use; {fix}")
    lo, hi = 1, max(1, most)   # bytes() grows with rows: the most rows within budget, by bisection
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if est.bytes(mid) <= budget else (lo, mid - 1)
    return lo


def batches(model, inputs: list, most: int = 256, budget: int | None = None, what: str = "running") -> list[list]:
    """`inputs` cut into consecutive batches that fit (see rows_that_fit)."""
    if not inputs:
        return []
    rows = rows_that_fit(model, most, budget, what)
    return [inputs[i:i + rows] for i in range(0, len(inputs), rows)]


def index_bytes(model, prompt_len: int) -> int:
    """Bytes of `generate(model, [prompt], attention="index")` from a prompt of prompt_len tokens to max_len: the
    prefill's pass over the prompt, each proven head's table (a latest/earliest head's key codes, a position head's
    positions), each other head's KV cache over max_len, and the tokens (the kernel's int64 buffer and the list or
    array it returns, TOKEN_BYTES a token)."""
    from hardwire.runtime.index_attention import Rule, derive
    cfg = model.config
    size = next(iter(model.w.values())).element_size()
    limit = cfg["max_len"] + 1
    total = estimate(model, prompt_len + 1).bytes(1) + TOKEN_BYTES * limit
    rules = {(r.layer, r.head): r for r in derive(model) if isinstance(r, Rule)}
    for i, layer in enumerate(cfg["layers"]):
        for h in range(layer["heads"]):
            r, e = rules.get((i, h)), layer["d_head"]
            slots = limit if r is None or r.kind == "position" else r.key.size + 1
            total += slots * e * size * (2 if r is None else 1) + slots
    return total


def index_fits(model, prompt_len: int, what: str, fix: str) -> None:
    """Refuse, with the estimate, an index decoding (index_bytes) that does not fit in the memory it may use."""
    need, budget = index_bytes(model, prompt_len), budget_bytes(str(next(iter(model.w.values())).device))
    if need > budget:
        cfg = model.config
        raise HardwireError(f"{what} {cfg['program']} needs about {gigabytes(need)} to decode {cfg['max_len']:,} "
                            f"tokens (d_model {cfg['d_model']}), more than the {gigabytes(budget)} of memory it may "
                            f"use; {fix}")
