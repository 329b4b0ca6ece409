"""`hardwire explain PROG.hw|M.safetensors --input "a b c" -o DIR`: one HTML page that walks one input through the
model (from the program, or from a weight file's tensors and header)."""
from __future__ import annotations

from hardwire.cli.args import params_arg, positive_int


def add_parser(sub) -> None:
    e = sub.add_parser("explain", help="write an HTML page that walks one input through the compiled model")
    e.add_argument("program", help="a .hw program, or a weight file written by `hardwire compile`")
    e.add_argument("--input", required=True, help='whitespace-separated tokens, e.g. "a b c"')
    e.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="the folder to write index.html in (one self-contained file)")
    e.add_argument("--param", action="append", metavar="NAME=VALUE", help="set a compile-time param")
    e.add_argument("--max-steps", type=positive_int, default=1000, help="step limit for the full run of a loop")
    e.add_argument("--json", action="store_true", help="print one JSON object")


def cmd_explain(a) -> dict:
    from hardwire.explain.page import explain
    return explain(a.program, a.input, a.output, params_arg(a.param), a.max_steps)
