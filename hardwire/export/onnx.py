"""Export a compiled model's forward pass as an ONNX graph of primitive ops (docs/export.md).

The graph mirrors runtime.model.Transformer.forward op for op (packed QKV, masked softmax, ReLU MLP, the
LayerNorm over pairs), so onnxruntime gives the same residual stream up to float rounding, and the same
decoded outputs. Inputs: `input_ids` [B, T] int64 (BOS included; for `vocab word` the words themselves) and
`lengths` [B] int64. Outputs: `residual` [B, T, d] float32 and one `decoded.NAME` [B, T] int64 per output
that reads residual dims (the value's index for one-hot and scalar outputs, the integer for words).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hardwire.compiler.core.errors import HardwireError
from hardwire.export.common import f32, one_pass, vocab_fields

OPSET = 18  # BitwiseAnd, ReduceMean with axes as an input
IR_VERSION = 8  # what opset 18 shipped with (onnx 1.13): onnxruntime 1.14 and later load it


def _onnx():
    """The onnx module, or one clear error naming the extra to install."""
    try:
        import onnx
    except ImportError:
        raise HardwireError("exporting to ONNX needs the onnx package: pip install hardwire[export]") from None
    return onnx


class _Graph:
    """A small builder: nodes with generated names, initializers from numpy arrays."""

    def __init__(self, onnx):
        self.onnx, self.h, self.nodes, self.inits, self.n = onnx, onnx.helper, [], [], 0

    def const(self, value, name: str | None = None) -> str:
        """An initializer: a weight under its hardwire name, or a small constant under a generated one."""
        if name is None:
            self.n += 1
            name = f"const_{self.n}"
        self.inits.append(self.onnx.numpy_helper.from_array(np.asarray(value), name))
        return name

    def weight(self, name: str, value) -> str:
        """A weight, named as in the hardwire file (layers.i.attn.W_QKV: the packed Q, K, V)."""
        return self.const(value, name)

    def op(self, kind: str, *inputs: str, **attrs) -> str:
        self.n += 1
        out = f"{kind.lower()}_{self.n}"
        self.nodes.append(self.h.make_node(kind, list(inputs), [out], name=f"n{self.n}", **attrs))
        return out

    def name(self, tensor: str, name: str) -> str:
        """Give a computed tensor a public name (an Identity node)."""
        self.nodes.append(self.h.make_node("Identity", [tensor], [name], name=f"out_{name}"))
        return name


def _embed(g: _Graph, model, ids: str, first: str) -> str:
    """Token plus position embeddings, as Transformer.embed_tokens computes them."""
    bits = model.p("embed.bits")
    t_len = g.op("Shape", ids, start=1, end=2)
    positions = g.op("Slice", g.weight("embed.positions", f32(model.position_table())), g.const([0]),
                     t_len, g.const([0]))
    tokens = g.weight("embed.tokens", f32(model.p("embed.tokens")))
    if bits is None:
        x = g.op("Gather", tokens, ids, axis=0)
    else:  # `vocab word`: the sum of the rows of the token's two's complement bits; BOS adds embed.tokens[0]
        n = bits.shape[0]
        masks = g.const(np.array([np.int64(1) << np.int64(k) for k in range(n)], dtype=np.int64))
        set_bits = g.op("Not", g.op("Equal", g.op("BitwiseAnd", g.op("Unsqueeze", ids, g.const([-1])),
                                                  masks), g.const(np.int64(0))))
        not_first = g.op("Not", g.op("Unsqueeze", first, g.const([0, 2])))  # [1, T, 1]
        tb = g.op("Cast", g.op("And", set_bits, not_first), to=g.onnx.TensorProto.FLOAT)
        bos = g.op("Mul", g.op("Cast", g.op("Unsqueeze", first, g.const([0, 2])),
                               to=g.onnx.TensorProto.FLOAT), tokens)
        x = g.op("Add", g.op("MatMul", tb, g.weight("embed.bits", f32(bits))), bos)
    return g.op("Add", x, positions)


def _attention(g: _Graph, model, i: int, x: str, mask: str) -> str:
    """Layer i's heads: packed QKV, scores masked to -inf, softmax, heads concatenated, W_O; added to x."""
    qkv, wo, _, _ = model.packed(i)
    heads, dh = model.config["layers"][i]["heads"], model.config["layers"][i]["d_head"]
    if qkv is None or dh == 0:  # no heads, or heads that read nothing: they add exactly 0
        return x
    y = g.op("MatMul", x, g.weight(f"layers.{i}.attn.W_QKV", f32(qkv)))
    y = g.op("Transpose", g.op("Reshape", y, g.const([0, 0, 3, heads, dh])), perm=[2, 0, 3, 1, 4])
    q, k, v = (g.op("Gather", y, g.const(np.int64(j)), axis=0) for j in range(3))
    scores = g.op("MatMul", q, g.op("Transpose", k, perm=[0, 1, 3, 2]))
    att = g.op("Softmax", g.op("Where", mask, scores, g.const(np.float32(-np.inf))), axis=-1)
    out = g.op("Transpose", g.op("MatMul", att, v), perm=[0, 2, 1, 3])
    out = g.op("Reshape", out, g.const([0, 0, heads * dh]))
    return g.op("Add", x, g.op("MatMul", out, g.weight(f"layers.{i}.attn.W_O", f32(wo))))


def _position_wise(g: _Graph, model, i: int, x: str) -> str:
    """Layer i's ReLU MLP and pair LayerNorms, both reading the same x (Transformer.mlp)."""
    _, _, w_in, w_out = model.packed(i)
    y = x
    if w_in is not None:
        hidden = g.op("Relu", g.op("MatMul", x, g.weight(f"layers.{i}.mlp.W_in", f32(w_in))))
        y = g.op("Add", y, g.op("MatMul", hidden, g.weight(f"layers.{i}.mlp.W_out", f32(w_out))))
    n_in = model.p(f"layers.{i}.norm.W_in")
    if n_in is not None:  # layer_norm_pairs: center and scale each consecutive pair; 0 where the variance is 0
        eps = np.asarray(model.config["layers"][i]["norm_eps"], dtype=np.float32)[:, None]
        v = g.op("MatMul", x, g.weight(f"layers.{i}.norm.W_in", f32(n_in)))
        pairs = g.op("Reshape", v, g.const([0, 0, len(eps), 2]))
        last = g.const([-1])
        c = g.op("Sub", pairs, g.op("ReduceMean", pairs, last, keepdims=1))
        var = g.op("ReduceMean", g.op("Mul", c, c), last, keepdims=1)
        var = g.op("Add", var, g.weight(f"layers.{i}.norm.eps", eps))
        tiny = g.const(np.float32(np.finfo(np.float32).tiny))
        scaled = g.op("Mul", c, g.op("Reciprocal", g.op("Sqrt", g.op("Max", var, tiny))))
        zero = g.const(np.float32(0))
        normed = g.op("Where", g.op("Greater", var, zero), scaled, zero)
        normed = g.op("Reshape", normed, g.const([0, 0, 2 * len(eps)]))
        n_out = g.weight(f"layers.{i}.norm.W_out", f32(model.p(f"layers.{i}.norm.W_out")))
        y = g.op("Add", y, g.op("MatMul", normed, n_out))
    return y


def _decoded(g: _Graph, name: str, out: dict, x: str) -> str:
    """One output read off the residual as decode_column reads it: an index into its values, or a word."""
    z = g.op("Gather", x, g.const(np.array(out["dims"], dtype=np.int64)), axis=2)
    if out["encoding"] == "onehot":
        r = g.op("ArgMax", z, axis=-1, keepdims=0)
    elif out["encoding"] in ("scalar", "code"):
        first = g.op("Slice", z, g.const([0]), g.const([1]), g.const([-1]))
        r = g.op("ArgMin", g.op("Abs", g.op("Sub", first, g.const(np.array(out["grid"], np.float32)))),
                 axis=-1, keepdims=0)
    else:
        n = len(out["dims"])
        weights = np.array([1 << k for k in range(n - 1)] + [-(1 << (n - 1))], dtype=np.int64)
        on = g.op("Cast", g.op("Greater", z, g.const(np.float32(0.5))), to=g.onnx.TensorProto.INT64)
        r = g.op("ReduceSum", g.op("Mul", on, g.const(weights)), g.const([-1]), keepdims=0)
    return g.name(r, f"decoded.{name}")


def build_graph(model):
    """The forward pass of a runtime.model.Transformer as an onnx ModelProto (one pass: no loop, no decoding)."""
    onnx = _onnx()
    h, tp = onnx.helper, onnx.TensorProto
    g = _Graph(onnx)
    cfg = model.config
    t_scalar = g.op("Squeeze", g.op("Shape", "input_ids", start=1, end=2), g.const([0]))
    pos = g.op("Range", g.const(np.int64(0)), t_scalar, g.const(np.int64(1)))  # [T]
    first = g.op("Equal", pos, g.const(np.int64(0)))
    x = _embed(g, model, "input_ids", first)
    keys = g.op("Less", g.op("Unsqueeze", pos, g.const([0, 1])),
                g.op("Unsqueeze", "lengths", g.const([1, 2])))  # [B, 1, T]: keys present
    mask = keys
    if cfg["causal"]:
        mask = g.op("And", keys, g.op("GreaterOrEqual", g.op("Unsqueeze", pos, g.const([1])),
                                      g.op("Unsqueeze", pos, g.const([0]))))  # key <= query
    mask = g.op("Unsqueeze", mask, g.const([1]))  # [B, 1, T|1, T], broadcast over heads
    for i in range(cfg["n_layers"]):
        x = _position_wise(g, model, i, _attention(g, model, i, x, mask))
    d = cfg["d_model"]
    outputs = [h.make_tensor_value_info(g.name(x, "residual"), tp.FLOAT, ["batch", "seq", d])]
    for name, out in model.outputs.items():
        if out["dims"]:
            outputs.append(h.make_tensor_value_info(_decoded(g, name, out, x), tp.INT64, ["batch", "seq"]))
    inputs = [h.make_tensor_value_info("input_ids", tp.INT64, ["batch", "seq"]),
              h.make_tensor_value_info("lengths", tp.INT64, ["batch"])]
    graph = h.make_graph(g.nodes, f"hardwire_{cfg['program']}", inputs, outputs, g.inits)
    proto = h.make_model(graph, opset_imports=[h.make_opsetid("", OPSET)], producer_name="hardwire",
                         ir_version=IR_VERSION)
    onnx.helper.set_model_props(proto, {"hardwire": json.dumps(sidecar(model), sort_keys=True)})
    onnx.checker.check_model(proto, full_check=True)
    return proto


def sidecar(model) -> dict:
    """The vocabulary JSON written next to the graph: token ids, what each graph output means."""
    return {**vocab_fields(model, "hardwire-onnx/2"), "max_len": model.config["max_len"],
            "inputs": {"input_ids": "[B, T] int64: BOS (0) at position 0, then token ids (for `vocab word` the "
                                    "words themselves), padded with 0", "lengths": "[B] int64: tokens + 1 (BOS)"},
            "graph_outputs": {"residual": "[B, T, d_model] float32, the final residual stream",
                              **{f"decoded.{k}": f"[B, T] int64, {_meaning(o)}" for k, o in model.outputs.items()
                                 if o["dims"]}}}


def _meaning(out: dict) -> str:
    return "the word (two's complement)" if out["encoding"] == "word" else "an index into outputs[name].values"


def sidecar_path(path: str) -> Path:
    """OUT.onnx -> OUT.vocab.json beside it."""
    p = Path(path)
    return p.with_name((p.stem if p.suffix == ".onnx" else p.name) + ".vocab.json")


def export(model, path: str) -> dict:
    """Write the graph to `path` and its vocabulary JSON beside it; returns what was written."""
    onnx = _onnx()
    proto = build_graph(model)
    side = sidecar_path(path)
    try:
        onnx.save(proto, path)
        side.write_text(json.dumps(sidecar(model), indent=1, sort_keys=True) + "\n")
    except OSError as e:
        raise HardwireError(f"cannot write the export: {e.strerror}", path) from None
    return {"program": model.config["program"], "target": "onnx", "output": path, "vocab": str(side),
            "opset": OPSET, "nodes": len(proto.graph.node),
            "graph_outputs": [o.name for o in proto.graph.output],
            "one_pass": one_pass(model.config)}


def decode(side: dict, decoded: dict[str, np.ndarray], lengths) -> list[dict[str, list]]:
    """The graph's decoded.* outputs as Transformer.decode returns them: values at positions 1..length-1
    (the sidecar's values are typed JSON: compiler/artifact.from_json decodes them)."""
    from hardwire.compiler.artifact import from_json
    results = []
    for b, n in enumerate(int(x) - 1 for x in lengths):
        row = {}
        for name, out in side["outputs"].items():
            if not out["dims"]:
                row[name] = [from_json(out.get("value", out["values"][0] if out["values"] else None))] * n
            elif out["encoding"] == "word":
                row[name] = [int(v) for v in decoded[f"decoded.{name}"][b, 1:n + 1]]
            else:
                row[name] = [from_json(out["values"][int(j)]) for j in decoded[f"decoded.{name}"][b, 1:n + 1]]
        results.append(row)
    return results


def run(path: str, ids, lengths) -> dict[str, np.ndarray]:
    """Every graph output for one batch, by onnxruntime on the CPU (ids, lengths: int64 arrays or tensors)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise HardwireError("running an ONNX export needs onnxruntime: pip install hardwire[export]") from None
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    feed = {"input_ids": np.asarray(ids, dtype=np.int64), "lengths": np.asarray(lengths, dtype=np.int64)}
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feed)))
