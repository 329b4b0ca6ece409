"""`hardwire certify MODEL.safetensors|PROG.hw [--program PROG.hw] [--param ...] [--dtype float32] [--json]`.

The certificate is about a program: the one the weight file carries (config.source), or --program's; its
header must be the one the compiler writes for that program, and its weights are compared block by block with
the program's (hardwire/certify/program.py) before the error analysis (hardwire/certify/certifier.py). Exit 0 when the
model is certified exact at its max_len, 1 when the certificate covers shorter inputs only (or none), 2 on bad
input. proofs/README.md says what is proved and how.
"""
from __future__ import annotations

from hardwire.certify.certifier import UNIT_ROUNDOFF, Certificate, certify, decode_margin, from_compiled


def add_parser(sub) -> None:
    c = sub.add_parser("certify", help="prove a weight file computes its program exactly (or say where not)")
    c.add_argument("model", help="a weight file from `hardwire compile`, or a program PROG.hw to compile first")
    c.add_argument("--program", metavar="PROG.hw", help="for a weight file: the program it must compute (default: "
                                                        "the program its header carries)")
    c.add_argument("--dtype", choices=sorted(UNIT_ROUNDOFF), default="float32")
    c.add_argument("--param", action="append", metavar="NAME=VALUE", help="for a program: a compile-time param")
    c.add_argument("--json", action="store_true", help="print one JSON object")


def cmd_certify(a) -> dict:
    from hardwire.certify.program import Claim, file_model, program_record
    if a.model.endswith(".hw"):
        from hardwire.cli.args import load_program
        from hardwire.compiler.core.errors import HardwireError
        from hardwire.compiler.pipeline import compile_program
        if a.program is not None:
            raise HardwireError("--program is for a weight file; a program PROG.hw is certified as compiled", a.model)
        prog = load_program(a.model, a.param)
        model = from_compiled(compile_program(prog))
        rec = program_record(prog.source or "", prog.params)
        claim, mismatch = Claim(prog.name, rec["sha256"], rec["params"], a.model), None
    else:
        model, claim, mismatch = file_model(a.model, a.program, a.param)
    if mismatch is not None:  # the header is not the program's: nothing in it can vouch for the weights
        cert = Certificate(False, 0, a.dtype, f"not certified in {a.dtype}: {mismatch}", mismatch, [])
    else:
        cert = certify(model, a.dtype)
    blocks: dict[str, dict] = {}
    for f in cert.findings:  # a loop body is analysed pass after pass: keep each block's last (largest) bound
        blocks[f.where] = {"where": f.where, "detail": f.detail, **f.stats}
    cfg = model.config
    kind = "generated sequence" if cfg.get("generate") else "input"
    return {"program": cfg["program"], "dtype": a.dtype, "certified": cert.ok, "length": cert.length,
            "max_len": cfg["max_len"], "statement": cert.statement, "failure": cert.failure,
            "claim": claim.sentence(cert.length, a.dtype, kind) if cert.length else None,
            "program_sha256": claim.sha256, "program_params": claim.params, "program_from": claim.origin,
            "loop": cert.steps, "blocks": list(blocks.values()),
            "outputs": {name: {"error": err, "margin": decode_margin(model.outputs[name])}
                        for name, err in cert.output_error.items()}}


def render_certify(info: dict) -> str:
    lines = [f"{info['program']} ({info['dtype']}): {info['statement']}"]
    if info.get("claim"):
        lines.append(f"  {info['claim']}")
    else:
        lines.append(f"  about program {info['program']} (sha256 {info['program_sha256'][:16]}, from "
                     f"{info['program_from']})")
    for b in info["blocks"]:
        lines.append(f"  {b['where']}: {b['detail']}")
    for name, o in info["outputs"].items():
        lines.append(f"  output {name}: error at most {o['error']:.2e}, decode margin {o['margin']:.3g}")
    return "\n".join(lines)
