"""Autoregressive decoding with a KV cache, batched: each row appends its own next token at its own position.

The model is causal and every norm is position-wise, so a position's residual never changes once computed:
caching each layer's keys and values is exact, and one step costs one position per row.
"""
from __future__ import annotations

import json

import torch

from .model import Transformer, decode_column

PREFILL_CHUNK = 512


def next_values(model: Transformer, x: torch.Tensor, name: str) -> list:
    """The generated output's value at one position per row (x: [B, D])."""
    out = model.outputs[name]
    return decode_column(x[:, out["dims"]], out)


@torch.no_grad()
def generate(model: Transformer, prompts: list[list], max_len: int | None = None) -> list[list]:
    """Tokens generated after each prompt, until a stop token (included) or max_len tokens in all."""
    cfg = model.config
    name, stop = cfg["generate"]["output"], cfg["generate"]["stop"]
    limit = min(max_len or cfg["max_len"], cfg["max_len"]) + 1  # positions, BOS included
    ids, lengths = model.encode(prompts)
    x = model.embed_tokens(ids)
    b, t = ids.shape
    keys = torch.arange(limit, device=x.device)
    caches = []
    for i in range(cfg["n_layers"]):  # prefill: the prompts, keeping every layer's keys and values
        qkv, wo, _, _ = model.packed(i)
        kv = None
        if qkv is not None:
            h = cfg["layers"][i]["heads"]
            q, k, v = (x @ qkv).view(b, t, 3, h, -1).permute(2, 0, 3, 1, 4)
            kc = k.new_zeros(b, h, limit, k.shape[-1])
            vc = v.new_zeros(b, h, limit, v.shape[-1])
            kc[:, :, :t], vc[:, :, :t] = k, v
            kv = (kc, vc)
            out = torch.empty_like(q)
            for s in range(0, t, PREFILL_CHUNK):  # queries in chunks: long prompts never need a [T, T] matrix
                qs = torch.arange(s, min(s + PREFILL_CHUNK, t), device=x.device)
                ok = (keys[None, None, :t] < lengths[:, None, None]) & (keys[None, None, :t] <= qs[None, :, None])
                sc = (q[:, :, s:s + len(qs)] @ k.transpose(-1, -2)).masked_fill(~ok[:, None], float("-inf"))
                out[:, :, s:s + len(qs)] = torch.softmax(sc, -1) @ v
            x = x + out.transpose(1, 2).reshape(b, t, -1) @ wo
        x = model.mlp(x, i)
        caches.append(kv)
    rows = torch.arange(b, device=x.device)
    last = x[rows, lengths - 1]                     # [B, D]: the residual at each row's last position
    pos = lengths.clone()                           # where each row's next token goes
    out: list[list] = [[] for _ in range(b)]
    active = [True] * b
    while True:
        vals = next_values(model, last, name)
        new_ids = []
        for r in range(b):
            if active[r]:
                out[r].append(vals[r])
                if vals[r] in stop or int(pos[r]) + 1 >= limit:
                    active[r] = False
            new_ids.append(model.token_id.get(json.dumps(vals[r]), 0))
        if not any(active):
            return out
        step_ids = torch.tensor(new_ids, device=x.device)
        p = torch.clamp(pos, max=limit - 1)
        y = (model.p("embed.tokens")[step_ids] + model.p("embed.positions")[p])[:, None, :]   # [B, 1, D]
        valid = (keys[None, :] <= p[:, None])[:, None, None, :]                              # [B, 1, 1, L]
        for i in range(cfg["n_layers"]):
            qkv, wo, _, _ = model.packed(i)
            if qkv is not None:
                h = cfg["layers"][i]["heads"]
                q, k, v = (y @ qkv).view(b, 1, 3, h, -1).permute(2, 0, 3, 1, 4)  # [B, H, 1, dh]
                kc, vc = caches[i]
                kc[rows, :, p] = k[:, :, 0]
                vc[rows, :, p] = v[:, :, 0]
                att = torch.softmax((q @ kc.transpose(-1, -2)).masked_fill(~valid, float("-inf")), -1)
                y = y + (att @ vc).transpose(1, 2).reshape(b, 1, -1) @ wo
            y = model.mlp(y, i)
        last = y[:, 0]
        pos = pos + 1
