"""What `hardwire explain` records from the weights alone: one forward pass with every layer's residual, raw
scores and pattern; a looped model's passes one by one; a generating model's tokens one by one.

Only the runtime's Transformer is used (no program), so the same walk serves a .hw and a weight file. The
passes and tokens are re-run with the runtime's own dense layers (Transformer.layer), the reference pass.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

PASSES = 12   # the most loop passes the step control shows
TOKENS = 16   # the most generated tokens the step control shows


@dataclass
class Forward:
    """One pass over a sequence: residual after the embedding (0) and after every layer, what each MLP read,
    and every head's raw scores (before the softmax, λ included) and pattern."""
    after: list[np.ndarray]             # [positions, d] per layer, 0 = embedding
    mids: dict[int, np.ndarray]         # layer (1-based) -> residual entering its MLP
    scores: dict[int, np.ndarray]       # layer -> [heads, queries, keys], -inf where masked
    attention: dict[int, np.ndarray]    # layer -> [heads, queries, keys]


@dataclass
class Pass:
    """One pass of a loop body: the registers before it, each body head's pattern, what it emitted."""
    step: int
    registers: dict[str, list]
    attention: dict[int, np.ndarray]
    halted: bool
    emitted: object = None


@dataclass
class Token:
    """One generation step: the sequence read, the token produced, and what each head read at the last position."""
    step: int
    tokens: list
    produced: object
    reads: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)   # (layer, head) -> weights over keys


def forward(t, tokens: list, layers: range | None = None, x=None) -> Forward:
    """The runtime's dense pass, layer by layer (Transformer.layer), keeping what the page shows."""
    import torch
    ids, lengths = t.encode([tokens])
    after, mids, scores, attention = [], {}, {}, {}
    with torch.no_grad():
        x0, mask = t.embed(ids, lengths)
        x = x0 if x is None else x
        after.append(x[0].cpu().numpy().astype(np.float64))
        for i in layers if layers is not None else range(t.config["n_layers"]):
            qkv = t.packed(i)[0]
            if qkv is not None:
                h = t.config["layers"][i]["heads"]
                q, k, _ = (x @ qkv).view(1, x.shape[1], 3, h, -1).permute(2, 0, 3, 1, 4)
                sc = (q @ k.transpose(-1, -2)).masked_fill(~mask[:, None], float("-inf"))
                scores[i + 1] = sc[0].cpu().numpy().astype(np.float64)
            seen: list = []
            real = t.mlp
            t.mlp = lambda y, j, _seen=seen: (_seen.append(y), real(y, j))[1]
            try:
                x, att = t.layer(x, mask, i)
            finally:
                del t.mlp
            mids[i + 1] = seen[0][0].cpu().numpy().astype(np.float64)
            after.append(x[0].cpu().numpy().astype(np.float64))
            if att is not None:
                attention[i + 1] = att[0].cpu().numpy().astype(np.float64)
    return Forward(after, mids, scores, attention)


def loop_passes(t, tokens: list, limit: int = PASSES) -> list[Pass]:
    """The first `limit` passes of a looped model on one input, as runtime.loop runs them (dense)."""
    import torch

    from hardwire.runtime.loop import flag
    from hardwire.runtime.loop_state import decode_register
    from hardwire.runtime.model import decode_words
    loop = t.config["loop"]
    body, flags = loop["body_layers"], loop["flags"]
    ids, lengths = t.encode([tokens])
    n = int(lengths[0])
    out: list[Pass] = []
    with torch.no_grad():
        x, mask = t.embed(ids, lengths)
        for step in range(limit):
            regs = {name: list(decode_register(x[0, 1:n], reg)) for name, reg in loop["registers"].items()
                    if not name.startswith("__")}
            y, att = x, {}
            for i in range(body):
                y, a = t.layer(y, mask, i)
                if a is not None:
                    att[i + 1] = a[0].cpu().numpy().astype(np.float64)
            halted = "halted" in flags and bool(flag(y, flags["halted"])[0])
            emitted = None
            if "emit_on" in flags and bool(flag(y, flags["emit_on"])[0]):
                emitted = list(decode_words(y[:, 1, flags["emit_val"]]))[0]
            out.append(Pass(step + 1, regs, att, halted, emitted))
            if halted:
                break
            x = y
    return out


def generation(t, prompt: list, generated: list, limit: int = TOKENS) -> list[Token]:
    """The first `limit` generation steps: each re-runs the dense pass over the sequence so far (what the
    KV-cached decoder computes at the last position) and keeps every head's weights there."""
    from hardwire.compiler.artifact import from_json
    vocab = {str(from_json(v)): from_json(v) for v in t.config["vocab"]}
    out: list[Token] = []
    seq = list(prompt)
    for k, tok in enumerate(generated[:limit]):
        if len(seq) > t.config["max_len"]:
            break
        f = forward(t, seq)
        reads = {(layer, h): att[h, -1] for layer, att in f.attention.items() for h in range(att.shape[0])}
        out.append(Token(k + 1, list(seq), tok, reads))
        seq.append(vocab.get(str(tok), tok))
    return out


def stop_reason(t, prompt: list, generated: list) -> tuple[bool, str]:
    """(stopped on a stop token, the reason in words) for a finished generation."""
    from hardwire.compiler.artifact import from_json
    stops = [from_json(v) for v in t.config["generate"]["stop"]]
    last = generated[-1] if generated else None
    if generated and str(last) in {str(s) for s in stops}:
        return True, f"stopped on the stop token {last!s}"
    return False, (f"was cut off at max_len = {t.config['max_len']} (prompt {len(prompt)} + {len(generated)} "
                   "generated tokens) before any stop token")
