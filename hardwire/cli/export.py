"""`hardwire export MODEL.safetensors --to onnx|transformer-lens -o OUT` (docs/export.md).

onnx: OUT is the graph (OUT.onnx), with OUT.vocab.json beside it. transformer-lens: OUT is a folder holding
config.json, model.safetensors and vocab.json. --verify runs the export (onnxruntime / TransformerLens) on
random inputs against hardwire's own runtime. Needs the `export` extra: pip install hardwire[export].
"""
from __future__ import annotations

import random

import numpy as np

TARGETS = ("onnx", "transformer-lens")


def add_parser(sub) -> None:
    from hardwire.cli.args import positive_int
    e = sub.add_parser("export", help="export a weight file to ONNX or TransformerLens")
    e.add_argument("model", help="a weight file from `hardwire compile`")
    e.add_argument("--to", required=True, choices=TARGETS)
    e.add_argument("-o", "--output", required=True,
                   help="onnx: the .onnx file (OUT.vocab.json is written beside it); transformer-lens: a folder")
    e.add_argument("--forward-only", action="store_true",
                   help="transformer-lens: export a looped or generating program's single forward pass")
    e.add_argument("--verify", type=positive_int, nargs="?", const=32, default=None, metavar="N",
                   help="run the export on N random inputs (default 32) and compare with hardwire's runtime")
    e.add_argument("--json", action="store_true", help="print one JSON object")


def random_batch(model, samples: int, seed: int = 0) -> list[list]:
    """Random valid inputs of random lengths, as `hardwire check` draws them."""
    from hardwire.harness import sample_input
    cfg = model.config
    bits = cfg["word_bits"] if cfg.get("word_vocab") else 0
    rng = random.Random(seed)
    return [sample_input(rng, cfg["vocab"], cfg["max_len"], cfg.get("distinct", False), bits,
                         cfg.get("exact_len", False)) for _ in range(samples)]


def verify(model, target: str, path: str, samples: int = 32, seed: int = 0) -> dict:
    """Run the export and the runtime (a model on the CPU) on one random batch: the largest residual difference
    (at positions inside each input) and how many inputs decode differently (from the residual, and for ONNX
    also from its decoded.* outputs)."""
    import torch
    ids, lengths = model.encode(random_batch(model, samples, seed))
    with torch.no_grad():
        ref = model(ids, lengths)
    want = model.decode(ref, lengths)
    if target == "onnx":
        from hardwire.export import onnx as export_onnx
        outs = export_onnx.run(path, ids.numpy(), lengths.numpy())
        residual = outs["residual"]
        graph_decoded = export_onnx.decode(export_onnx.sidecar(model), outs, lengths.tolist())
    else:
        from hardwire.export import tl as export_tl
        cfg = model.config
        residual = export_tl.run(path, ids, lengths, cfg["word_bits"] if cfg.get("word_vocab") else 0)
        graph_decoded = None
    got = model.decode(torch.from_numpy(residual), lengths)
    inside = np.arange(ids.shape[1])[None, :] < lengths.numpy()[:, None]
    diff = float(np.abs(residual - ref.numpy())[inside].max())
    mismatches = sum(g != w or (graph_decoded is not None and graph_decoded[r] != w)
                     for r, (g, w) in enumerate(zip(got, want)))
    return {"samples": samples, "max_abs_diff": diff, "mismatches": mismatches}


def cmd_export(a) -> dict:
    from hardwire.cli.args import check_output
    from hardwire.runtime.model import load
    if a.to == "onnx":
        from hardwire.export import onnx as export_onnx
        export_onnx._onnx()  # the one-line error before any work when the extra is missing
        check_output(a.output, "-o", a.model)
        model = load(a.model, "cpu")
        info = export_onnx.export(model, a.output)
    else:
        from hardwire.export import tl as export_tl
        export_tl.require()
        model = load(a.model, "cpu")
        info = export_tl.export(model, a.output, a.forward_only)
    if a.verify:  # mismatches: exit 1, as for `hardwire check`
        info["verify"] = verify(model, a.to, a.output, a.verify)
    return info
