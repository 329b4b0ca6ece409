"""CompiledModel: weights + config + residual labels, saved as safetensors (never pickle)."""
from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from .errors import HardwireError

FORMAT = "hardwire/2"  # hardwire/2: values in the header are typed (to_json); hardwire/1 wrote fractions as "a/b"


def to_json(v):
    """A program value as JSON that from_json turns back into the same value and type.

    Integers, booleans, strings and none are plain JSON (true, 1, "1/2", null stay apart); a fraction is
    {"frac": "1/3"} and a tuple {"tuple": [...]} (of encoded values). A whole fraction is its integer, as
    everywhere in the language. Every value crossing the weight file's header goes through here: vocab
    entries, output and register value lists, stop tokens.
    """
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, Fraction):
        return int(v) if v.denominator == 1 else {"frac": f"{v.numerator}/{v.denominator}"}
    if isinstance(v, tuple):
        return {"tuple": [to_json(x) for x in v]}
    raise TypeError(f"no hardwire value encoding for {v!r} ({type(v).__name__})")


def from_json(j):
    """to_json's inverse: a header value back to the program's value. ValueError if j is not one."""
    if j is None or isinstance(j, (bool, int, str)):
        return j
    if isinstance(j, dict) and len(j) == 1:
        if isinstance(j.get("frac"), str):
            num, sep, den = j["frac"].partition("/")
            try:
                v = Fraction(int(num), int(den))
            except (ValueError, ZeroDivisionError):
                v = None
            if sep and v is not None and v.denominator != 1:
                return v
        if isinstance(j.get("tuple"), list):
            return tuple(from_json(x) for x in j["tuple"])
    raise ValueError(f"{json.dumps(j, default=repr)[:40]} is not a hardwire value")


def value_id(v) -> str:
    """A value's encoding as one string: equal for equal values of one type (0 and false differ); token ids are
    keyed by it."""
    return json.dumps(to_json(v), sort_keys=True)


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
        """Write atomically: a temp file in the same folder, then rename. An existing file at `path` is
        replaced whole or left as it was; a path that cannot be written is a HardwireError naming it."""
        from safetensors import SafetensorError
        from safetensors.numpy import save_file
        # one metadata key: safetensors writes a map's keys in no fixed order, and compiles must be
        # byte-identical
        meta = {"hardwire": json.dumps({"format": FORMAT, "config": self.config, "labels": self.labels,
                                        "outputs": self.outputs}, sort_keys=True)}
        if os.path.isdir(path):
            raise HardwireError("is a folder; name the weight file, e.g. OUT.safetensors", path)
        folder = os.path.dirname(os.path.abspath(path))
        try:
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".hardwire-", suffix=".tmp")
        except OSError as e:
            raise HardwireError(f"cannot write the weight file: {e.strerror}", path) from None
        os.close(fd)
        try:
            save_file({k: np.ascontiguousarray(v, dtype=np.float32 if v.dtype != np.int64 else v.dtype)
                       for k, v in self.tensors.items()}, tmp, metadata=meta)
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes the file private (0600); give it the usual mode
            os.replace(tmp, path)
        except (OSError, SafetensorError) as e:
            raise HardwireError(f"cannot write the weight file: {getattr(e, 'strerror', None) or e}", path) from None
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)


def _umask() -> int:
    """The process umask (read by setting it and putting it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _is_int(v, lo: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= lo


def _is_value(j) -> bool:
    try:
        from_json(j)
    except ValueError:
        return False
    return True


def _check_column(where: str, col, d: int, bad) -> None:
    """An output or register: an encoding the runtime decodes, dims inside the residual, values to match."""
    if not isinstance(col, dict) or col.get("encoding") not in ("onehot", "scalar", "word"):
        bad(f"{where} has no valid encoding (onehot, scalar or word)")
    dims, values = col.get("dims"), col.get("values")
    if not isinstance(dims, list) or not all(_is_int(x) and x < d for x in dims):
        bad(f"{where} reads dims {str(dims)[:60]}, not indices below d_model {d}")
    if not isinstance(values, list):
        bad(f"{where} lists no values")
    for v in values:
        if not _is_value(v):
            bad(f"{where} lists {json.dumps(v)[:40]}, not a {FORMAT} value")
    if dims and col["encoding"] == "onehot" and len(dims) != len(values):
        bad(f"{where} has {len(dims)} dims for {len(values)} one-hot values")
    if dims and col["encoding"] == "scalar" and (len(dims) != 1 or not isinstance(col.get("grid"), list)
                                                 or len(col["grid"]) != len(values) or not values):
        bad(f"{where} is a scalar without one dim and a grid as long as its values")


def check_weights(meta, shapes: dict[str, list[int]], path: str) -> None:
    """Check a weight file's header (config, labels, outputs) against its tensors' shapes, before any tensor is
    read: every tensor the config implies is present with its exact shape, and nothing else. Raises
    HardwireError naming the file and the first inconsistency. A new kind of tensor in `build` needs its shape
    here too (tests/test_errors.py round-trips every program through a file)."""
    def bad(what: str):
        raise HardwireError(f"corrupt weight file: {what}", path)
    found = meta.get("format") if isinstance(meta, dict) else None
    if isinstance(found, str) and found.startswith("hardwire/") and found != FORMAT:
        raise HardwireError(f"weight file format {found[:20]!r}, but this hardwire reads {FORMAT}; recompile it "
                            "with `hardwire compile PROG.hw -o OUT.safetensors`", path)
    if found != FORMAT:
        raise HardwireError(f"not a hardwire weight file (no {FORMAT} header); compile one with "
                            "`hardwire compile PROG.hw -o OUT.safetensors`", path)
    cfg, labels, outputs = meta.get("config"), meta.get("labels"), meta.get("outputs")
    if not isinstance(cfg, dict) or not isinstance(labels, list) or not isinstance(outputs, dict):
        bad("the header needs a config object, a labels list and an outputs object")
    for key, ok in (("vocab", isinstance(cfg.get("vocab"), list)), ("max_len", _is_int(cfg.get("max_len"), 1)),
                    ("causal", isinstance(cfg.get("causal"), bool)), ("d_model", _is_int(cfg.get("d_model"), 2)),
                    ("n_layers", _is_int(cfg.get("n_layers"))), ("layers", isinstance(cfg.get("layers"), list))):
        if not ok:
            bad(f"config.{key} is missing or invalid ({str(cfg.get(key))[:40]})")
    d, vocab = cfg["d_model"], cfg["vocab"]
    if not all(isinstance(v, (int, str)) for v in vocab) or len({json.dumps(v) for v in vocab}) != len(vocab):
        bad("config.vocab must list distinct integers or strings")
    if len(labels) != d:
        bad(f"{len(labels)} residual labels for d_model {d}")
    if len(cfg["layers"]) != cfg["n_layers"]:
        bad(f"config.n_layers is {cfg['n_layers']} but config.layers describes {len(cfg['layers'])}")
    word_bits = cfg.get("word_bits") if cfg.get("word_vocab") else 0
    if word_bits and not (_is_int(word_bits, 2) and word_bits <= 63):
        bad(f"config.word_bits is {word_bits!r}")
    want = {"embed.tokens": [1 if word_bits else len(vocab) + 1, d], "embed.positions": [cfg["max_len"] + 1, d]}
    if word_bits:
        want["embed.bits"] = [word_bits, d]
    for i, layer in enumerate(cfg["layers"]):
        if not isinstance(layer, dict) or not all(_is_int(layer.get(k)) for k in ("heads", "d_head", "d_mlp")):
            bad(f"config.layers[{i}] needs heads, d_head and d_mlp counts")
        h, dh, m = layer["heads"], layer["d_head"], layer["d_mlp"]
        if h:
            want.update({f"layers.{i}.attn.W_{n}": [h, d, dh] for n in "QKV"})
            want[f"layers.{i}.attn.W_O"] = [h, dh, d]
        if m:
            want.update({f"layers.{i}.mlp.W_in": [d, m], f"layers.{i}.mlp.W_out": [m, d]})
        eps = layer.get("norm_eps")
        if eps is not None:
            if not isinstance(eps, list) or not eps or not all(isinstance(e, (int, float)) and e >= 0 for e in eps):
                bad(f"config.layers[{i}].norm_eps must list non-negative epsilons")
            want.update({f"layers.{i}.norm.W_in": [d, 2 * len(eps)], f"layers.{i}.norm.W_out": [2 * len(eps), d]})
    for name in sorted(want.keys() | shapes.keys()):
        if name not in shapes:
            bad(f"tensor {name!r} is missing")
        if name not in want:
            bad(f"unexpected tensor {name!r}")
        if list(shapes[name]) != want[name]:
            bad(f"tensor {name!r} has shape {list(shapes[name])}, expected {want[name]}")
    for name, col in outputs.items():
        _check_column(f"output {name!r}", col, d, bad)
    groups = cfg.get("groups")  # optional (files from before `hardwire certify` lack it; certify says so)
    if groups is not None:
        if not isinstance(groups, list):
            bad("config.groups must list the residual's value sets")
        for g in groups:
            if not isinstance(g, dict) or g.get("encoding") not in ("onehot", "scalar", "word") \
                    or not isinstance(g.get("dims"), list) or not g["dims"] \
                    or not all(_is_int(x) and x < d for x in g["dims"]) \
                    or g["encoding"] == "scalar" and not (isinstance(g.get("grid"), list) and g["grid"] and all(
                        isinstance(v, (int, float)) and not isinstance(v, bool) for v in g["grid"])) \
                    or g["encoding"] == "word" and not (_is_int(g.get("bits"), 1) and g["bits"] <= 63
                                                        and len(g["dims"]) == g["bits"]):
                bad(f"config.groups entry {str(g)[:80]} is not a value set over dims below d_model {d}")
    gen = cfg.get("generate")
    if gen is not None and (not isinstance(gen, dict) or gen.get("output") not in outputs
                            or not isinstance(gen.get("stop"), list) or not all(map(_is_value, gen["stop"]))):
        bad("config.generate must name an output and list stop tokens")
    loop = cfg.get("loop")
    if loop is not None:
        if not isinstance(loop, dict) or not _is_int(loop.get("body_layers")) \
                or loop["body_layers"] > cfg["n_layers"] or not isinstance(loop.get("registers"), dict) \
                or not isinstance(loop.get("flags"), dict):
            bad("config.loop needs body_layers (at most n_layers), registers and flags")
        for name, reg in loop["registers"].items():
            _check_column(f"register {name!r}", reg, d, bad)
        for name, dims in loop["flags"].items():
            if not isinstance(dims, list) or not dims or not all(_is_int(x) and x < d for x in dims):
                bad(f"loop flag {name!r} reads dims {str(dims)[:60]}, not indices below d_model {d}")


def build(prog, layout, tok, pos, layers, bits=None, body_layers: int = 0) -> CompiledModel:
    """Pack wired layers into standard shapes: per layer [heads, d_model, d_head] and a ReLU MLP."""
    from .layout import groups
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
        if units.norms:  # LayerNorm over pairs: W_in [d, 2G] forms (x, -x), W_out [2G, d] writes (a, -a)/2
            g = len(units.norms)
            n_in, n_out = np.zeros((d, 2 * g)), np.zeros((2 * g, d))
            for j, (form, (true, false), _) in enumerate(units.norms):
                for dim, c in form.items():
                    n_in[dim, 2 * j], n_in[dim, 2 * j + 1] = c, -c
                n_out[2 * j, true], n_out[2 * j, false] = 0.5, -0.5
            tensors.update({f"layers.{i}.norm.W_in": n_in, f"layers.{i}.norm.W_out": n_out})
            cfg_layers[-1]["norm_eps"] = [eps for _, _, eps in units.norms]
    outputs = {}
    for name, s in prog.outputs.items():
        dims = layout.dims.get((id(s), ""), [])  # none for a constant output
        outputs[name] = {"encoding": s.encoding, "dims": dims, "values": [to_json(v) for v in s.values],
                         "grid": [float(v) for v in s.values] if s.encoding == "scalar" else None}
        if s.encoding == WORD and isinstance(s, Const):
            outputs[name]["value"] = s.value
    config = {"program": prog.name, "vocab": [to_json(v) for v in prog.vocab], "max_len": prog.max_len,
              "causal": prog.causal, "distinct": prog.distinct, "exact_len": prog.exact_len, "params": prog.params,
              "n_layers": len(layers), "d_model": d, "layers": cfg_layers, "bos_token_id": 0,
              "word_bits": prog.word_bits, "word_vocab": prog.word_vocab}
    config["groups"] = groups(layout, prog.max_len)  # value sets per subspace: what `hardwire certify` reads
    if prog.source is not None:  # the program itself, with a hash: what `hardwire certify` proves the file computes
        from .certify_program import program_record
        config["source"] = program_record(prog.source, prog.params)
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


def compile_program(prog, max_params: int | None = None) -> CompiledModel:
    """Checked program -> CompiledModel: lower, schedule, lay out, wire.

    max_params: refuse (HardwireError naming the size) a model with more parameters, before allocating it.
    """
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
    layout, tok, pos, bits, layers = wire(prog, segments, loop_index, max_params)
    body = 0 if prog.loop is None else n_layers(segments[0])
    model = build(prog, layout, tok, pos, layers, bits, body)
    model.compile_s = round(time.perf_counter() - t0, 4)  # kept out of the file: compiles are byte-identical
    return model
