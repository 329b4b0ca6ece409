"""CompiledModel: weights + config + residual labels, saved as safetensors (never pickle)."""
from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

FORMAT = "hardwire/1"


def to_json(v):
    if isinstance(v, Fraction):
        return str(v) if v.denominator != 1 else int(v)
    if isinstance(v, tuple):
        return [to_json(x) for x in v]
    return v


@dataclass
class CompiledModel:
    """Everything the runtime needs; `config` and `labels` travel in the safetensors header."""
    tensors: dict[str, np.ndarray]
    config: dict
    labels: list[str]
    outputs: dict = field(default_factory=dict)
    compile_s: float = 0.0

    def summary(self) -> dict:
        params = sum(int(t.size) for t in self.tensors.values())
        nonzero = sum(int(np.count_nonzero(t)) for t in self.tensors.values())
        c = self.config
        return {"program": c["program"], "layers": c["n_layers"],
                "heads": sum(layer["heads"] for layer in c["layers"]),
                "d_model": c["d_model"], "d_head": max([x["d_head"] for x in c["layers"]], default=0),
                "d_mlp": max([x["d_mlp"] for x in c["layers"]], default=0),
                "params": params, "nonzero_params": nonzero}

    def save(self, path: str) -> None:
        """Write atomically: a temp file in the same folder, then rename."""
        from safetensors.numpy import save_file
        # one metadata key: safetensors writes a map's keys in no fixed order, and compiles must be
        # byte-identical
        meta = {"hardwire": json.dumps({"format": FORMAT, "config": self.config, "labels": self.labels,
                                        "outputs": self.outputs}, sort_keys=True)}
        folder = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        os.close(fd)
        try:
            save_file({k: np.ascontiguousarray(v, dtype=np.float32 if v.dtype != np.int64 else v.dtype)
                       for k, v in self.tensors.items()}, tmp, metadata=meta)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)


def build(prog, layout, tok, pos, layers, bits=None, body_layers: int = 0) -> CompiledModel:
    """Pack wired layers into standard shapes: per layer [heads, d_model, d_head] and a ReLU MLP."""
    from .sops import WORD, Const
    d = len(layout.labels)
    tensors = {"embed.tokens": tok, "embed.positions": pos}
    if bits is not None:
        tensors["embed.bits"] = bits
    cfg_layers = []
    for i, (heads, units) in enumerate(layers):
        dh = max([max(h[0].shape[1], h[2].shape[1]) for h in heads], default=0)
        if heads:
            wq, wk, wv = (np.zeros((len(heads), d, dh)) for _ in range(3))
            wo = np.zeros((len(heads), dh, d))
            for h, (q, k, v, o, _) in enumerate(heads):
                wq[h, :, :q.shape[1]], wk[h, :, :k.shape[1]] = q, k
                wv[h, :, :v.shape[1]], wo[h, :o.shape[0], :] = v, o
            tensors.update({f"layers.{i}.attn.W_Q": wq, f"layers.{i}.attn.W_K": wk,
                            f"layers.{i}.attn.W_V": wv, f"layers.{i}.attn.W_O": wo})
        m = len(units.reads)
        if m:
            w_in, w_out = np.zeros((d, m)), np.zeros((m, d))
            for j, (r, w) in enumerate(zip(units.reads, units.writes)):
                for dim, c in r.items():
                    w_in[dim, j] += c
                for dim, c in w.items():
                    w_out[j, dim] += c
            tensors.update({f"layers.{i}.mlp.W_in": w_in, f"layers.{i}.mlp.W_out": w_out})
        cfg_layers.append({"heads": len(heads), "d_head": dh, "d_mlp": m,
                           "scales": [round(h[4], 6) for h in heads]})
    outputs = {}
    for name, s in prog.outputs.items():
        dims = layout.dims.get((id(s), ""), [])  # none for a constant output
        outputs[name] = {"encoding": s.encoding, "dims": dims, "values": [to_json(v) for v in s.values],
                         "grid": [float(v) for v in s.values] if s.encoding == "scalar" else None}
        if s.encoding == WORD and isinstance(s, Const):
            outputs[name]["value"] = s.value
    config = {"program": prog.name, "vocab": [to_json(v) for v in prog.vocab], "max_len": prog.max_len,
              "causal": prog.causal, "distinct": prog.distinct, "params": prog.params,
              "n_layers": len(layers), "d_model": d, "layers": cfg_layers, "bos_token_id": 0,
              "word_bits": prog.word_bits, "word_vocab": prog.word_vocab}
    if prog.generate is not None:
        config["generate"] = {"output": prog.generate, "stop": [to_json(v) for v in prog.stop]}
    if prog.loop is not None:
        lp = prog.loop
        config["loop"] = {"body_layers": body_layers,
                          "registers": {r.label: {"dims": layout.dims[(id(r), "")], "encoding": r.encoding,
                                                  "values": [to_json(v) for v in r.values]}
                                        for r in lp.registers},
                          "flags": {k: layout.dims[(id(r), "")] for k, r in lp.flags.items()}}
    return CompiledModel(tensors, config, list(layout.labels), outputs)


def compile_program(prog) -> CompiledModel:
    """Checked program -> CompiledModel: lower, schedule, lay out, wire."""
    from .fuse import fuse_maps
    from .lower import lower, schedule
    from .wire import n_layers, wire
    t0 = time.perf_counter()
    prog = fuse_maps(prog)
    segments, loop_index = [], None
    if prog.loop is not None:
        segments.append(schedule(lower(prog, prog.loop.commits), prog.loop.commits))
        loop_index = 0
    segments.append(schedule(lower(prog)))
    layout, tok, pos, bits, layers = wire(prog, segments, loop_index)
    body = 0 if prog.loop is None else n_layers(segments[0])
    model = build(prog, layout, tok, pos, layers, bits, body)
    model.compile_s = round(time.perf_counter() - t0, 4)  # kept out of the file: compiles are byte-identical
    return model
