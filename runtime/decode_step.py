"""What every decoder does between two steps (runtime/generate.py, index_decode.py): read the generated value at
each row's last position, record it, and pick the next token ids."""
from __future__ import annotations

import torch
from hardwire.compiler.artifact import from_json
from hardwire.runtime.model import Transformer, decode_column, token_key


def target(model: Transformer, max_len: int | None) -> tuple[str, set, int]:
    """What every decoder generates: the output named by `generate`, its stop tokens (by type and value: 1 is not
    true) and the position limit (BOS included), max_len capped at the model's."""
    cfg = model.config
    stop = {token_key(from_json(v)) for v in cfg["generate"]["stop"]}
    return cfg["generate"]["output"], stop, min(max_len or cfg["max_len"], cfg["max_len"]) + 1


def next_values(model: Transformer, x: torch.Tensor, name: str) -> list:
    """The generated output's value at one position per row (x: [B, D])."""
    out = model.outputs[name]
    if not out["dims"]:   # a constant output (it folded away): model.decode's rule
        values = out["values"]
        return [from_json(out.get("value", values[0] if values else None))] * x.shape[0]
    cache = model.__dict__.setdefault("_out_dims", {})
    key = (name, x.device)
    if key not in cache:   # the dims as a tensor once: indexing by a list of 2,000 ints converted it every token
        cache[key] = torch.tensor(out["dims"], dtype=torch.long, device=x.device)
    return decode_column(x.index_select(1, cache[key]), out)


def record(model: Transformer, vals: list, out: list[list], active: list[bool], pos: torch.Tensor, stop,
           limit: int) -> list[int]:
    """Append each active row's generated value, deactivate rows that hit a stop token or the length limit, and
    return every row's next token id (inactive rows keep decoding a harmless token). Shared by both decoders.

    A row whose next position is already past the limit (a prompt of max_len tokens) appends nothing: the
    interpreter generates only while the sequence is shorter than max_len."""
    new_ids = []
    for r in range(len(vals)):
        key = token_key(vals[r])
        if active[r] and int(pos[r]) >= limit:
            active[r] = False
        if active[r]:
            out[r].append(vals[r])
            if key in stop or int(pos[r]) + 1 >= limit:
                active[r] = False
        if model.config.get("word_vocab"):   # a word is its own id (embed_step embeds its bits)
            new_ids.append(int(vals[r]) if isinstance(vals[r], int) and not isinstance(vals[r], bool) else 0)
        else:
            new_ids.append(model.token_id.get(key, 0))
    return new_ids
