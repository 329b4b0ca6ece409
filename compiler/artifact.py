"""CompiledModel: weights + config + residual labels, saved as safetensors (never pickle)."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
from hardwire.compiler.core.errors import HardwireError

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


def program_hash(text: str, params: dict) -> str:
    """sha256 of a program's text and params (canonical JSON): what a certificate names."""
    blob = json.dumps({"params": params, "text": text}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def program_record(text: str, params: dict) -> dict:
    """The header's `config.source`: the program's text, every param's value, and their hash."""
    params = {k: int(v) for k, v in sorted(params.items())}
    return {"text": text, "params": params, "sha256": program_hash(text, params)}


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
    largest: list = field(default_factory=list)  # where the size goes (size_budget.contributors); not in the file

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
        replaced whole or left as it was; a path that cannot be written is a HardwireError naming it. The file
        stores float32, so a model float32 cannot hold exactly (compiler/precision.py) is refused, not rounded."""
        from hardwire.compiler.precision import fit
        from safetensors import SafetensorError
        from safetensors.numpy import save_file
        f = fit(self.tensors, self.config)
        if not f.holds("float32"):
            raise HardwireError(f"a weight file stores float32, which cannot hold {self.config['program']} exactly "
                                f"(layer {f.layer}'s MLP sums half-integers up to {f.widest:.6g}, beyond 2^23); "
                                "run it from its source in float64 (hardwire check --dtype float64, or the Python "
                                "API)", path)
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


def position_table(tensors: dict, rows: int, cap: int = 1 << 26) -> np.ndarray:
    """The first `rows` position rows [rows, D] as numpy: the stored table's, or the formula's (embed.position_form:
    row i + 1 = form[0] + i * form[1], BOS's row 0, computed in the form's dtype). A table of more than `cap`
    entries is refused (a HardwireError with its size): a consumer that needs every row of a long run's model
    (the certifier, the exports) cannot hold them."""
    table = tensors.get("embed.positions")
    if table is not None:
        return np.asarray(table[:rows])
    form = np.asarray(tensors["embed.position_form"])
    if rows * form.shape[1] > cap:
        raise HardwireError(f"this model's position rows are a formula over {rows - 1:,} positions; a table of them "
                            f"would be {rows * form.shape[1] * form.itemsize / 2**30:.1f} GiB")
    i = np.arange(rows - 1, dtype=form.dtype)[:, None]
    return np.concatenate([np.zeros((1, form.shape[1]), form.dtype), form[0] + i * form[1]])


def grid_of(g: dict) -> list[float]:
    """A scalar group's grid: listed, or the integers lo..hi of a formula's index (layout.groups)."""
    if "grid" in g:
        return g["grid"]
    lo, hi = g["integers"]
    return [float(v) for v in range(lo, hi + 1)]


def tabled(tensors: dict, config: dict) -> tuple[dict, dict]:
    """(tensors, config) with a position formula written out as its table and the index's integers as its grid:
    the form the certifier and the exports read (refused, by position_table, where the table would be too large)."""
    if "embed.position_form" not in tensors:
        return tensors, config
    out = {k: v for k, v in tensors.items() if k != "embed.position_form"}
    out["embed.positions"] = position_table(tensors, config["max_len"] + 1)
    groups = [{**{k: v for k, v in g.items() if k != "integers"}, "grid": grid_of(g)} if "integers" in g else g
              for g in config.get("groups") or []]
    return out, {**config, "groups": groups}


def build(prog, layout, tok, pos, layers, bits=None, body_layers: int = 0) -> CompiledModel:
    """Pack wired layers into standard shapes: per layer [heads, d_model, d_head] and a ReLU MLP."""
    from hardwire.compiler.core.sops import CODE, SCALAR, WORD, Const, code_grid
    from hardwire.compiler.layout import groups
    d = len(layout.labels)
    tensors = {"embed.tokens": tok, ("embed.position_form" if layout.position_form else "embed.positions"): pos}
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
                         "grid": [float(v) for v in s.values] if s.encoding == SCALAR else
                         code_grid(len(s.values)) if s.encoding == CODE else None}
        if s.encoding == WORD and isinstance(s, Const):
            outputs[name]["value"] = s.value
    config = {"program": prog.name, "vocab": [to_json(v) for v in prog.vocab], "max_len": prog.max_len,
              "causal": prog.causal, "distinct": prog.distinct, "exact_len": prog.exact_len, "params": prog.params,
              "n_layers": len(layers), "d_model": d, "layers": cfg_layers, "bos_token_id": 0,
              "word_bits": prog.word_bits, "word_vocab": prog.word_vocab}
    config["groups"] = groups(layout, prog.max_len)  # value sets per subspace: what `hardwire certify` reads
    for g in config["groups"]:
        if "values" in g:   # a code's values, as an output lists them
            g["values"] = [to_json(v) for v in g["values"]]
    if prog.source is not None:  # the program itself, with a hash: what `hardwire certify` proves the file computes
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
    return CompiledModel(tensors, config, list(layout.labels), outputs, largest=list(layout.largest))
