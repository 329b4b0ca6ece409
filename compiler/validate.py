"""One structural check of a weight file, run by every reader before anything runs: the header against itself
and against the tensors' names, dtypes, shapes and magnitudes.

runtime.model.load (and through it `run`, `export`, `certify`, `hardwire.load`) calls `read_header`, then
`check_header` before any tensor is read, then `check_values` on the tensors. The checks need no program:
they hold the header to what the compiler writes (types and ranges of every config field, one tensor per
block with the shape the config implies, float32 only, outputs and loop registers that read the residual
value sets their labels and config.groups name). Whether the weights compute the program is the
certifier's question (`hardwire certify`), not this module's. `sniff` tells a program from a weight file,
so that a file given to the wrong command is named for what it is.

Long: one check per section of the header, in the header's order, sharing one `bad` reporter; splitting it
would scatter what a weight file must satisfy.
"""
from __future__ import annotations

import json
import math
import os
import struct
from fractions import Fraction

from hardwire.compiler.artifact import FORMAT, from_json
from hardwire.compiler.core.errors import HardwireError
from hardwire.compiler.core.limits import LONG_MAX_LEN  # no compiled model has more positions
from hardwire.compiler.core.sops import code_grid

MAX_WEIGHT = 2.0 ** 64   # sqrt of float32's largest value: a product of two weights above it overflows
MAX_WORD_BITS = 63
FLAGS = ("halted", "emit_on", "emit_val")   # a loop's flags, each the register "__" + its name (loops.py)
SNIFF_BYTES = 4096
PROGRAM_STARTS = ("program", "vocab", "max_len", "causal", "distinct", "exact_len", "generate", "param",
                  "require", "word")   # the header lines of grammar.lark: a .hw file starts with one
DTYPES = {"F16": "float16", "BF16": "bfloat16", "F64": "float64", "I8": "int8", "U8": "uint8", "I16": "int16",
          "I32": "int32", "I64": "int64", "BOOL": "bool", "F8_E4M3": "float8_e4m3", "F8_E5M2": "float8_e5m2"}


def _is_int(v, lo: int = 0, hi: int | None = None) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= lo and (hi is None or v <= hi)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_value(j) -> bool:
    try:
        from_json(j)
    except ValueError:
        return False
    return True


def _short(x, n: int = 60) -> str:
    return str(x)[:n]


def _few(items: list) -> str:
    """A list in a message: whole when short, else its first three items and its length."""
    if len(items) <= 4:
        return str(items)
    return "[" + ", ".join(repr(x) for x in items[:3]) + f", ... ({len(items)} in all)]"


def _show(v) -> str:
    """A header value as JSON, cut short: what the message quotes."""
    return json.dumps(v, default=str)[:40]


def fmt(v) -> str:
    """A value as the residual labels write it (layout.fmt)."""
    return "none" if v is None else str(v)


def read_header(text: str, path: str) -> dict:
    """The hardwire header (a JSON string in the safetensors metadata) parsed; a HardwireError if it is not JSON
    or nests too deeply for the parser (a RecursionError would be a traceback)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise HardwireError("corrupt or foreign weight file (its header nests too deeply to be a hardwire "
                            "header)", path) from None
    except ValueError as e:
        raise HardwireError(f"corrupt or foreign weight file ({str(e).splitlines()[0][:120]})", path) from None


def check_header(meta, tensors: dict[str, tuple[str, list[int]]], path: str) -> None:
    """Check a weight file's header (config, labels, outputs) against itself and its tensors' (dtype, shape),
    before any tensor is read: every tensor the config implies is present in float32 with its exact shape, and
    nothing else. Raises HardwireError naming the file and the first inconsistency. A new kind of tensor in
    artifact.build needs its shape here too (tests/test_validate.py round-trips every program through a file).
    Keys the compiler does not write are ignored: nothing reads them."""
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
    if not all(isinstance(v, (int, str)) or _is_fraction(v) for v in vocab) or \
            len({json.dumps(v, sort_keys=True) for v in vocab}) != len(vocab):
        bad("config.vocab must list distinct integers, fractions or strings")
    if len(labels) != d:
        bad(f"{len(labels)} residual labels for d_model {d}")
    if len(cfg["layers"]) != cfg["n_layers"]:
        bad(f"config.n_layers is {cfg['n_layers']} but config.layers describes {len(cfg['layers'])}")
    check_config(cfg, bad)
    word_bits = cfg["word_bits"] if cfg["word_vocab"] else 0
    want = {"embed.tokens": [1 if word_bits else len(vocab) + 1, d]}
    if "embed.position_form" in tensors:   # the position rows as a formula (compiler/wire.position_form)
        want["embed.position_form"] = [2, d]
    else:
        want["embed.positions"] = [cfg["max_len"] + 1, d]
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
            if not isinstance(eps, list) or not eps or not all(_is_number(e) and e >= 0 for e in eps):
                bad(f"config.layers[{i}].norm_eps must list non-negative epsilons")
            want.update({f"layers.{i}.norm.W_in": [d, 2 * len(eps)], f"layers.{i}.norm.W_out": [2 * len(eps), d]})
    for name in sorted(want.keys() | tensors.keys()):
        if name not in tensors:
            bad(f"tensor {name!r} is missing")
        if name not in want:
            bad(f"unexpected tensor {name!r}")
        dtype, shape = tensors[name]
        if list(shape) != want[name]:
            bad(f"tensor {name!r} has shape {list(shape)}, expected {want[name]}")
        if dtype != "F32":
            bad(f"tensor {name!r} is stored as {DTYPES.get(dtype, dtype)}; hardwire weight files hold float32")
    for i, layer in enumerate(cfg["layers"]):
        check_layer(i, layer, bad)
    for name, col in outputs.items():
        check_column(f"output {name!r}", col, d, bad)
    check_labels(labels, bad)
    for key in ("groups", "generate", "loop"):   # readers test `key in config`: a null block is no absent one
        if key in cfg and cfg[key] is None:
            bad(f"config.{key} is null; a model without a {key} block has no {key} key")
    groups = cfg.get("groups")  # optional (files from before `hardwire certify` lack it; certify says so)
    if groups is not None:
        check_groups(groups, labels, d, bad, cfg["max_len"] if "embed.position_form" in tensors else None)
    if not outputs:
        bad("the header lists no outputs (every program has at least one `output` line)")
    for name, col in outputs.items():
        if not isinstance(name, str) or not name:
            bad(f"output name {name!r} is empty")
        check_reads(f"output {name!r}", col, labels, groups, bad)
    gen = cfg.get("generate")
    if gen is not None and (not isinstance(gen, dict) or not isinstance(gen.get("output"), str)
                            or gen["output"] not in outputs
                            or not isinstance(gen.get("stop"), list) or not all(map(_is_value, gen["stop"]))):
        bad("config.generate must name an output and list stop tokens")
    loop = cfg.get("loop")
    if loop is not None:
        if not isinstance(loop, dict) or not _is_int(loop.get("body_layers")) \
                or loop["body_layers"] > cfg["n_layers"] or not isinstance(loop.get("registers"), dict) \
                or not isinstance(loop.get("flags"), dict):
            bad("config.loop needs body_layers (at most n_layers), registers and flags")
        for name, reg in loop["registers"].items():
            check_column(f"register {name!r}", reg, d, bad)
        for name, dims in loop["flags"].items():
            if not isinstance(dims, list) or not dims or not all(_is_int(x) and x < d for x in dims):
                bad(f"loop flag {name!r} reads dims {str(dims)[:60]}, not indices below d_model {d}")
        check_loop(loop, cfg, labels, groups, bad)
    if gen is not None:
        check_generate(gen, cfg, outputs[gen["output"]], groups, bad)


def check_config(cfg: dict, bad) -> None:
    """Every config field the runtime or the compiler's summary reads: its type and range."""
    if not isinstance(cfg.get("program"), str) or not cfg["program"]:
        bad(f"config.program is {_show(cfg.get('program'))}, not a program name")
    if cfg["max_len"] > LONG_MAX_LEN:
        bad(f"config.max_len is {cfg['max_len']}, over the compiler's limit of {LONG_MAX_LEN:,}")
    for key in ("distinct", "exact_len", "word_vocab"):
        if not isinstance(cfg.get(key), bool):
            bad(f"config.{key} is {_show(cfg.get(key))}, not true or false")
    bos = cfg.get("bos_token_id")
    if not _is_int(bos) or bos != 0:
        bad(f"config.bos_token_id is {_show(bos)}, but a hardwire model reads BOS as token 0")
    params = cfg.get("params")
    if not isinstance(params, dict) or not all(isinstance(k, str) and _is_int(v, -(1 << 63)) for k, v in
                                               params.items()):
        bad(f"config.params is {_show(params)}, not a map of param names to integers")
    if not _is_int(cfg.get("word_bits"), 0, MAX_WORD_BITS):
        bad(f"config.word_bits is {_show(cfg.get('word_bits'))}, not a word width of 0 to {MAX_WORD_BITS}")
    if cfg["word_vocab"]:
        if cfg["word_bits"] < 2:
            bad(f"config.word_bits is {cfg['word_bits']!r}")
        if cfg["vocab"]:
            bad("config.vocab lists tokens, but a `vocab word` model reads words")
    elif not cfg["vocab"]:
        bad("config.vocab is empty (a model that reads tokens needs at least one)")
    if cfg.get("generate") is not None and cfg.get("loop") is not None:
        bad("config has both a generate and a loop block; a program has at most one")


def check_layer(i: int, layer: dict, bad) -> None:
    """A layer's head count, head width and scales agree (build writes one scale per head)."""
    h, dh = layer["heads"], layer["d_head"]
    if (h == 0) != (dh == 0):
        bad(f"config.layers[{i}] has {h} heads of width {dh}")
    scales = layer.get("scales")
    if not isinstance(scales, list) or len(scales) != h or not all(_is_number(s) and s > 0 for s in scales):
        bad(f"config.layers[{i}].scales must list one positive scale per head ({h})")


def check_column(where: str, col, d: int, bad) -> None:
    """An output or register: an encoding the runtime decodes, dims inside the residual, values to match."""
    if not isinstance(col, dict) or col.get("encoding") not in ("onehot", "scalar", "word", "code"):
        bad(f"{where} has no valid encoding (onehot, scalar, word or code)")
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
    if dims and col["encoding"] == "code" and (len(dims) != 1 or col.get("grid") != code_grid(len(values))
                                               or len(values) < 2):
        bad(f"{where} is a code without one dim and the grid 0, 1, ... of its {len(values)} values")
    if len(set(dims)) != len(dims) or any(x < 2 for x in dims):
        bad(f"{where} reads dims {str(dims)[:60]}: each once, and none of bos and not_bos (dims 0 and 1)")
    if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
        bad(f"{where} lists a value twice")
    enc = col["encoding"]
    if enc == "word":
        if values:
            bad(f"{where} is declared a word, but it lists {len(values)} values, as a one-hot or scalar output does")
        if len(dims) > MAX_WORD_BITS or not dims and not _is_int(col.get("value"), -(1 << 63)):
            bad(f"{where} is a word of {len(dims)} bits" if dims else
                f"{where} is a constant word without an integer value")
    elif not dims and len(values) != 1:
        bad(f"{where} reads no dims, so it is a constant, but it lists {len(values)} values, not one")
    if enc == "scalar" and dims:
        for g, v in zip(col["grid"], map(from_json, values)):
            if not isinstance(v, (int, Fraction)) or isinstance(g, bool) or not isinstance(g, (int, float)) \
                    or g != float(v):
                bad(f"{where} has grid point {_show(g)} for its value {fmt(v)}; the grid must be its values as "
                    "numbers")


def check_labels(labels: list, bad) -> None:
    """Residual labels: one string per dim, bos and not_bos first (layout.Layout)."""
    for i, label in enumerate(labels):
        if not isinstance(label, str):
            bad(f"residual label {i} is {json.dumps(label)[:40]}, not a string")
    if labels[:2] != ["bos", "not_bos"]:
        bad(f"residual dims 0 and 1 are labelled {labels[:2]}, not ['bos', 'not_bos']")


def group_labels(g: dict, labels: list[str]) -> bool:
    """Whether a value set's dims carry the labels layout.alloc gives it (name=value, name.bK or name)."""
    names, name = [labels[x] for x in g["dims"]], g["name"]
    if g["encoding"] == "word":
        return names == [f"{name}.b{k}" for k in range(len(names))]
    if g["encoding"] == "onehot":
        return all(n.startswith(name + "=") for n in names)
    return names == [name]


def _is_fraction(v) -> bool:
    """A vocab entry written by artifact.to_json for a fraction that is not whole: {"frac": "1/3"} (read here, not
    through from_json: the artifact module imports this one)."""
    if not (isinstance(v, dict) and len(v) == 1 and isinstance(v.get("frac"), str)):
        return False
    num, sep, den = v["frac"].partition("/")
    try:
        return bool(sep) and int(den) > 1 and Fraction(int(num), int(den)).denominator == int(den)
    except ValueError:
        return False


def check_groups(groups, labels: list[str], d: int, bad, form_len: int | None = None) -> None:
    """config.groups: value sets over disjoint dims that cover the residual (bos and not_bos aside), each over
    the dims its labels name."""
    if not isinstance(groups, list):
        bad("config.groups must list the residual's value sets")
    for g in groups:
        if not isinstance(g, dict) or g.get("encoding") not in ("onehot", "scalar", "word", "code") \
                or not isinstance(g.get("dims"), list) or not g["dims"] \
                or not all(_is_int(x) and x < d for x in g["dims"]) \
                or g["encoding"] == "code" and not (len(g["dims"]) == 1 and isinstance(g.get("grid"), list)
                                                    and g["grid"] == code_grid(len(g["grid"]))
                                                    and isinstance(g.get("values"), list)
                                                    and len(g["values"]) == len(g["grid"])) \
                or g["encoding"] == "scalar" and "integers" not in g and not (
                    isinstance(g.get("grid"), list) and g["grid"] and all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in g["grid"])) \
                or "integers" in g and not (g.get("name") == "index" and form_len is not None
                                            and g["integers"] == [0, form_len - 1]) \
                or g["encoding"] == "word" and not (_is_int(g.get("bits"), 1) and g["bits"] <= 63
                                                    and len(g["dims"]) == g["bits"]):
            shown = str(g) if len(str(g)) <= 80 else str(g)[:76] + " ..."
            bad(f"config.groups entry {shown} is not a value set over dims below d_model {d}")
    seen: dict[int, str] = {}
    for g in groups:
        name = g.get("name")
        if not isinstance(name, str) or not name:
            bad(f"config.groups entry over dims {_few(g['dims'])} has no name")
        if g["encoding"] == "scalar" and "grid" in g and not all(math.isfinite(v) for v in g["grid"]):
            bad(f"config.groups entry {name!r} has a grid that is not finite")
        rng = g.get("range")
        if g["encoding"] == "word" and rng is not None and not (
                isinstance(rng, list) and len(rng) == 2 and all(_is_int(v, -(1 << 63)) for v in rng)
                and -(1 << (g["bits"] - 1)) <= rng[0] <= rng[1] < 1 << (g["bits"] - 1)):
            bad(f"config.groups entry {name!r} has range {_short(rng)}, not within its {g['bits']}-bit words")
        for x in g["dims"]:
            if x < 2 or x in seen:
                bad(f"config.groups entries {seen.get(x, 'bos/not_bos')!r} and {name!r} both claim dim {x}")
            seen[x] = name
        if not group_labels(g, labels):
            bad(f"config.groups entry {name!r} ({g['encoding']}) is over dims labelled "
                f"{_few([labels[x] for x in g['dims']])}")
    free = [x for x in range(2, d) if x not in seen]
    if free:
        bad(f"config.groups leaves {len(free)} residual dims in no value set (first: dim {free[0]}, "
            f"{labels[free[0]]!r})")


def check_reads(where: str, col: dict, labels: list[str], groups, bad) -> None:
    """An output or register reads one whole value set of its encoding: a one-hot one whose labels name its
    values in order, the bits of one word, or one scalar (and the config.groups entry over those dims)."""
    dims, enc = col["dims"], col["encoding"]
    if not dims:
        return
    names = [labels[x] for x in dims]
    if enc == "onehot":
        texts = [fmt(from_json(v)) for v in col["values"]]
        stem = names[0][:len(names[0]) - len(texts[0])]
        for x, n, t in zip(dims, names, texts):
            if not stem.endswith("=") or n != stem + t:
                bad(f"{where} decodes dim {x} as {t}, but that dim is labelled {n!r}")
    elif enc == "word":
        stem = names[0][:-3] if names[0].endswith(".b0") else names[0]
        for k, (x, n) in enumerate(zip(dims, names)):
            if n != f"{stem}.b{k}":
                bad(f"{where} is a word, but its bit {k} is dim {x}, labelled {n!r}, not a word's bit "
                    f"('NAME.b{k}')")
    if groups is None:
        return
    match = [g for g in groups if g["dims"] == dims]
    if not match or match[0]["encoding"] != enc:
        held = f"the {match[0]['encoding']} value set {match[0]['name']!r} there" if match else \
            "no value set over exactly those dims"
        bad(f"{where} is {enc} over dims {_few(dims)}, but config.groups has {held}")
    if enc in ("scalar", "code") and sorted(set(col["grid"])) != sorted(set(match[0]["grid"])):
        bad(f"{where}'s grid is not the grid of its value set {match[0]['name']!r}")
    if enc == "code" and col["values"] != match[0].get("values"):
        bad(f"{where} lists values that are not those of its value set {match[0]['name']!r} (a code holds the "
            "index of its value in that list)")


def check_loop(loop: dict, cfg: dict, labels: list[str], groups, bad) -> None:
    """A loop block: a body inside the model, registers over their value sets, flags over their registers."""
    if loop["body_layers"] < 1:
        bad("config.loop has a body of 0 layers")
    if not loop["registers"]:
        bad("config.loop lists no registers")
    for name, reg in loop["registers"].items():
        check_reads(f"register {name!r}", reg, labels, groups, bad)
        if not reg["dims"]:
            bad(f"register {name!r} reads no dims")
    flags = loop["flags"]
    for name, dims in flags.items():
        reg = loop["registers"].get("__" + name)
        if name not in FLAGS or reg is None or reg["dims"] != dims or reg["encoding"] != "word":
            bad(f"loop flag {name!r} is not one of {', '.join(FLAGS)} over its register '__{name}'")
    for name in FLAGS:
        if "__" + name in loop["registers"] and name not in flags:
            bad(f"config.loop has the register '__{name}' but not its flag {name!r}")
    if ("emit_on" in flags) != ("emit_val" in flags):
        bad("config.loop has one of the flags emit_on and emit_val without the other")


def check_generate(gen: dict, cfg: dict, out: dict, groups, bad) -> None:
    """A generate block (loops.check_generate's rules): a causal token model whose next-token output and stop
    tokens are tokens of the vocabulary."""
    if not cfg["causal"]:
        bad("config.generate on a model that is not causal (a generating program is `causal`)")
    if cfg["word_vocab"]:   # every word of the width is a token: the output a word of it, or integers in it
        half = 1 << (cfg["word_bits"] - 1)
        if out["encoding"] == "word":
            if len(out["dims"]) != cfg["word_bits"]:
                bad(f"config.generate names output {gen['output']!r}, a {len(out['dims'])}-bit word, on a model "
                    f"of {cfg['word_bits']}-bit tokens")
        else:
            extra = [v for v in out["values"] if isinstance(v, bool) or not isinstance(v, int) or not -half <= v < half]
            if extra:
                bad(f"config.generate names output {gen['output']!r}, which can be {extra[0]!r}, not a "
                    f"{cfg['word_bits']}-bit word")
        stray = [v for v in gen["stop"] if isinstance(v, bool) or not isinstance(v, int) or not -half <= v < half]
        if stray:
            bad(f"config.generate stops at {stray[0]!r}, not a {cfg['word_bits']}-bit word")
        return
    vocab = {json.dumps(v) for v in cfg["vocab"]}
    if out["encoding"] == "word":
        rng = next((g.get("range") for g in groups or [] if g["dims"] == out["dims"]), None)
        if not out["dims"] or rng is None:
            bad(f"config.generate names the word output {gen['output']!r}, whose range is not known")
        # a range wider than the vocabulary holds a non-token within its first len(vocab) + 1 values
        extra = [v for v in range(rng[0], min(rng[1], rng[0] + len(vocab)) + 1) if json.dumps(v) not in vocab]
    else:
        extra = [from_json(v) for v in out["values"] if json.dumps(v) not in vocab]
    if extra:
        bad(f"config.generate names output {gen['output']!r}, which can be {extra[0]!r}, not a token of "
            "config.vocab")
    stray = [from_json(v) for v in gen["stop"] if json.dumps(v) not in vocab]
    if stray:
        bad(f"config.generate stops at {stray[0]!r}, not a token of config.vocab")


def check_values(tensors: dict, path: str) -> None:
    """Every weight finite and at most MAX_WEIGHT in magnitude (torch tensors, as stored)."""
    import torch
    for name, t in tensors.items():
        if t.numel() == 0:
            continue
        lo, hi = (float(v) for v in torch.aminmax(t))   # NaN propagates: one pass, no copy of the tensor
        top = max(-lo, hi)
        if not math.isfinite(lo) or not math.isfinite(hi):
            raise HardwireError(f"corrupt weight file: tensor {name!r} holds NaN or infinite values", path)
        if top > MAX_WEIGHT:
            raise HardwireError(f"corrupt weight file: tensor {name!r} holds a weight of {top:.3g}, beyond the "
                                f"{MAX_WEIGHT:.3g} bound on any compiled weight", path)


def sniff(path: str) -> str | None:
    """What a file looks like from its first bytes: "weights" (safetensors), "program" (.hw text) or None."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(SNIFF_BYTES)
            size = os.fstat(fh.fileno()).st_size
    except OSError:
        return None
    if len(head) >= 10 and head[8:9] == b"{" and 8 + struct.unpack("<Q", head[:8])[0] <= size:
        return "weights"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 3:
            return None
        text = head[:e.start].decode("utf-8")
    if "\x00" in text:
        return None
    for line in text.lstrip("\ufeff").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        return "program" if line.split()[0].split("{")[0] in PROGRAM_STARTS else None
    return "program" if path.endswith(".hw") and text.strip() else None


def refuse_program(path: str) -> None:
    """Where a weight file is expected: a .hw program is named as one, with the command that compiles it."""
    if sniff(path) == "program":
        stem = os.path.splitext(os.path.basename(path))[0].removesuffix(".hw") or "model"
        raise HardwireError(f"this is a hardwire program (.hw source), not a weight file; compile it first: "
                            f"`hardwire compile {path} -o {stem}.safetensors`", path)


def refuse_weights(path: str) -> None:
    """Where a program is expected: a weight file is named as one, with the command that runs it."""
    if sniff(path) == "weights":
        raise HardwireError(f"this is a weight file (safetensors), not a .hw program; run it with "
                            f"`hardwire run {path} --input \"...\"` (compile and check read a program)",
                            path)
