"""`hardwire certify MODEL.safetensors|PROG.hw [--dtype float32] [--json]`: the certificate, per block.

Exit 0 when the model is certified exact at its max_len, 1 when the certificate covers shorter inputs only (or
none), 2 on bad input. proofs/README.md says what is proved and how.
"""
from __future__ import annotations

from hardwire.certify.certifier import UNIT_ROUNDOFF, certify, decode_margin, from_compiled, load_model


def add_parser(sub) -> None:
    c = sub.add_parser("certify", help="prove a weight file exact (or say where the argument fails)")
    c.add_argument("model", help="a weight file from `hardwire compile`, or a program PROG.hw to compile first")
    c.add_argument("--dtype", choices=sorted(UNIT_ROUNDOFF), default="float32")
    c.add_argument("--param", action="append", metavar="NAME=VALUE", help="for a program: a compile-time param")
    c.add_argument("--json", action="store_true", help="print one JSON object")


def cmd_certify(a) -> dict:
    if a.model.endswith(".hw"):
        from hardwire.cli.args import load_program
        from hardwire.compiler.pipeline import compile_program
        model = from_compiled(compile_program(load_program(a.model, a.param)))
    else:
        model = load_model(a.model)
    cert = certify(model, a.dtype)
    blocks: dict[str, dict] = {}
    for f in cert.findings:  # a loop body is analysed pass after pass: keep each block's last (largest) bound
        blocks[f.where] = {"where": f.where, "detail": f.detail, **f.stats}
    cfg = model.config
    return {"program": cfg["program"], "dtype": a.dtype, "certified": cert.ok, "length": cert.length,
            "max_len": cfg["max_len"], "statement": cert.statement, "failure": cert.failure,
            "loop": cert.steps, "blocks": list(blocks.values()),
            "outputs": {name: {"error": err, "margin": decode_margin(model.outputs[name])}
                        for name, err in cert.output_error.items()}}


def render_certify(info: dict) -> str:
    lines = [f"{info['program']} ({info['dtype']}): {info['statement']}"]
    for b in info["blocks"]:
        lines.append(f"  {b['where']}: {b['detail']}")
    for name, o in info["outputs"].items():
        lines.append(f"  output {name}: error at most {o['error']:.2e}, decode margin {o['margin']:.3g}")
    return "\n".join(lines)
