"""`hardwire run M.safetensors --input "a b c"`: run a weight file on one input (a loop until it halts, a
generating program until it stops)."""
from __future__ import annotations

from hardwire.cli.args import add_json_option, add_run_options, check_output, show
from hardwire.compiler.core.errors import HardwireError
from hardwire.harness import parse_input, run_batch


def add_parser(sub) -> None:
    r = sub.add_parser("run", help="run a weight file on one input")
    r.add_argument("model")
    r.add_argument("--input", required=True, help='whitespace-separated tokens, e.g. "3 1 2"')
    add_json_option(r)
    r.add_argument("--dense", action="store_true", help="run the plain dense forward pass, not runtime/fast.py's")
    r.add_argument("--trace", default=None, metavar="FILE.jsonl",
                   help="for a loop: write every register after every pass, one JSON line per step")
    add_run_options(r)


def cmd_run(a) -> dict:
    from hardwire.runtime.model import load
    if a.trace is not None:
        check_output(a.trace, "--trace")
    model = load(a.model, a.device)
    model.force_dense = a.dense  # --dense: the plain dense pass (runtime/loop.py, runtime/generate.py)
    tokens = parse_input(a.input, model.config["vocab"], bool(model.config.get("word_vocab")))
    model.encode([tokens])  # refuse a bad input before anything runs or a --trace file is opened
    if model.config.get("distinct"):
        for i, tok in enumerate(tokens):
            if tok in tokens[:i]:
                raise HardwireError(f"token {tok!r} at position {i} repeats, and this program is `distinct`")
    return run_batch(model, [tokens], max_steps=a.max_steps, progress=not a.json, trace=a.trace)[0]


def render(info: dict) -> str:
    if "generated" in info:
        return "generated: " + " ".join(show(v) for v in info["generated"])
    lines = [f"{k}: {' '.join(show(v) for v in vs)}" for k, vs in info["outputs"].items()]
    if "steps" in info:
        lines.append(f"emitted: {' '.join(map(str, info['emitted']))}")
        lines.append(f"steps: {info['steps']} ({'halted' if info['halted'] else 'step limit reached'})")
    return "\n".join(lines)
