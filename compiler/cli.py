"""The `hardwire` command line: compile, run, check, subleq.

Bad input: one line on stderr, exit 2. check: exit 1 on mismatches. A loop that reaches its step limit
without halting: exit 3.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, NoReturn

from .errors import HardwireError
from .harness import compare, json_row, parse_input, run_batch, sample_input  # noqa: F401 (sample_input: for importers)

if TYPE_CHECKING:
    from .sops import Program


def params_arg(items: list[str]) -> dict[str, int]:
    """--param NAME=INT values (each name once) as a dict."""
    out: dict[str, int] = {}
    for item in items or []:
        name, sep, val = item.partition("=")
        try:
            value: int | None = int(val)
        except ValueError:  # also '²', which str.isdigit() calls a digit
            value = None
        if not sep or not name.isidentifier() or value is None:
            raise HardwireError(f"--param expects name=integer, got {item!r}")
        if name in out:
            raise HardwireError(f"--param {name} is given twice ({out[name]} and {value})")
        out[name] = value
    return out


class ArgParser(argparse.ArgumentParser):
    """argparse held to the CLI's contract: a bad argument is one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def check_device(name: str | None) -> None:
    """Refuse a --device that torch cannot use here, before any work."""
    if name is None:
        return
    import torch
    try:
        device = torch.device(name)
    except RuntimeError:
        raise HardwireError(f"--device {name!r} is not a device name; use cpu or cuda") from None
    try:
        torch.zeros(1, device=device)
    except (RuntimeError, AssertionError) as e:
        raise HardwireError(f"--device {name} is not available here ({str(e).splitlines()[0][:80]}); "
                            "use --device cpu") from None


def check_output(path: str, flag: str, source: str | None = None) -> None:
    """Refuse an output path that cannot be written as a file (before any work): a missing folder, a folder
    given as the file, or the input file itself."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise HardwireError(f"{flag} {path}: the folder {folder} does not exist; create it first")
    if os.path.isdir(path):
        raise HardwireError(f"{flag} {path}: is a folder; name a file in it")
    if source is not None and os.path.exists(path) and os.path.exists(source) and os.path.samefile(path, source):
        raise HardwireError(f"{flag} {path}: would overwrite the input file itself")


def load_program(path: str, params: list[str] | None) -> Program:
    """Read and check a .hw file; unreadable files and bad UTF-8 are errors naming the file (and line:column)."""
    from .elaborate import check_source
    from .subleq_ref import read_text
    return check_source(read_text(path), path, params_arg(params))


def silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush does not fail on a closed pipe again."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (e.g. captured in a test)
        pass


def show(v) -> str:
    return "none" if v is None else str(v)


def cmd_compile(a) -> dict:
    from .artifact import compile_program
    check_output(a.output, "-o", a.program)
    prog = load_program(a.program, a.param)
    model = compile_program(prog, a.max_params)
    model.save(a.output)
    info = {**model.summary(), "compile_s": model.compile_s, "output": a.output}
    return info


def cmd_run(a) -> dict:
    from runtime.model import load
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


def cmd_check(a) -> dict:
    from runtime.model import from_compiled

    from .artifact import compile_program
    prog = load_program(a.program, a.param)
    compiled = compile_program(prog, a.max_params)
    import torch
    model = from_compiled(compiled, a.device, torch.float64 if a.dtype == "float64" else torch.float32)
    r = compare(prog, model, a.samples, a.seed, a.max_steps)
    return {**compiled.summary(), "samples": r["samples"], "mismatches": r["mismatches"], "dtype": a.dtype,
            "examples": r["examples"], "run_s": r["run_s"]}


def render(cmd: str, info: dict) -> str:
    if cmd == "bench":
        from .bench import table, tm_table
        if "constructions" in info:
            return "\n".join(f"{c['program']}: exact through {c['max_exact_length']} (swept {c['lengths_swept']}); "
                             f"{c['layers']} layers, d_model {c['d_model']}, d_mlp {c['d_mlp']} at {c['at_length']}"
                             for c in info["constructions"])
        if "programs" in info:
            from .bench_programs import programs_table
            return programs_table(info)
        return tm_table(info) if "throughput_machine" in info else table(info)
    if cmd == "sweep":
        from .sweep import render as render_sweep
        return render_sweep(info)
    if cmd == "certify":
        from .certify_cmd import render_certify
        return render_certify(info)
    if cmd == "tm":
        from .tm_cmd import render_tm
        return render_tm(info)
    if cmd == "subleq":
        from .subleq_cmd import render_subleq
        return render_subleq(info)
    if cmd == "run":
        if "generated" in info:
            return "generated: " + " ".join(show(v) for v in info["generated"])
        lines = [f"{k}: {' '.join(show(v) for v in vs)}" for k, vs in info["outputs"].items()]
        if "steps" in info:
            lines.append(f"emitted: {' '.join(map(str, info['emitted']))}")
            lines.append(f"steps: {info['steps']} ({'halted' if info['halted'] else 'step limit reached'})")
        return "\n".join(lines)
    lines = [f"{k}: {v}" for k, v in info.items() if k != "examples"]
    for ex in info.get("examples", []):
        model, interpreter = ({k: [show(v) for v in vs] for k, vs in ex[side].items()}  # 1/2, not Fraction(1, 2)
                              for side in ("model", "interpreter"))
        lines.append(f"mismatch on {ex['input']}: model {model} interpreter {interpreter}")
    return "\n".join(lines)


def parser() -> ArgParser:
    """The command line: every subcommand and its options (main parses with it; `make demo` builds checks)."""
    ap = ArgParser(prog="hardwire", description="Compile small programs into exact transformer weights.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compile", help="compile PROG.hw into a safetensors weight file")
    c.add_argument("program")
    c.add_argument("-o", "--output", required=True)
    r = sub.add_parser("run", help="run a weight file on one input")
    r.add_argument("model")
    r.add_argument("--input", required=True, help='whitespace-separated tokens, e.g. "3 1 2"')
    k = sub.add_parser("check", help="compile, then compare model and interpreter on random inputs")
    k.add_argument("program")
    k.add_argument("--samples", type=positive_int, default=200)
    k.add_argument("--seed", type=int, default=0)
    k.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    for p in (c, k):
        p.add_argument("--param", action="append", metavar="NAME=VALUE", help="set a compile-time param")
        p.add_argument("--max-params", type=positive_int, default=None, metavar="N",
                       help="refuse a program whose model would have more than N parameters (before building it)")
    for p in (c, r, k):
        p.add_argument("--json", action="store_true", help="print one JSON object")
    r.add_argument("--dense", action="store_true", help="run the plain dense forward pass, not runtime/fast.py's")
    r.add_argument("--trace", default=None, metavar="FILE.jsonl",
                   help="for a loop: write every register after every pass, one JSON line per step")
    for p in (r, k):
        p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
        p.add_argument("--max-steps", type=positive_int, default=10_000, help="step limit for a program with a loop")
    from . import bench, certify_cmd, explain, export_cmd, subleq_cmd, sweep, tm_cmd
    subleq_cmd.add_parser(sub)
    tm_cmd.add_parser(sub)
    bench.add_parser(sub)
    sweep.add_parser(sub)
    export_cmd.add_parser(sub)
    explain.add_parser(sub)
    certify_cmd.add_parser(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    from . import bench, certify_cmd, explain, export_cmd, subleq_cmd, sweep, tm_cmd
    ap = parser()
    try:
        a = ap.parse_args(argv)
    except SystemExit as e:  # --help (0), or a bad argument already reported on one line (2)
        return e.code if isinstance(e.code, int) else 0
    try:
        check_device(getattr(a, "device", None))
        info = {"compile": cmd_compile, "run": cmd_run, "check": cmd_check, "subleq": subleq_cmd.cmd_subleq,
                "tm": tm_cmd.cmd_tm, "bench": bench.cmd_bench, "sweep": sweep.cmd_sweep,
                "export": export_cmd.cmd_export, "explain": explain.cmd_explain,
                "certify": certify_cmd.cmd_certify}[a.cmd](a)
    except HardwireError as e:
        print(f"hardwire: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: no traceback; a weight file being written is left as it was
        print("hardwire: interrupted", file=sys.stderr)
        return 130
    try:
        shown = json_row(info) if a.cmd in ("run", "check") else info  # typed values: docs/tutorial.md, "Values"
        print(json.dumps(shown, default=str) if a.json else render(a.cmd, info), flush=True)
    except BrokenPipeError:  # the reader left early (`hardwire ... | head`): nothing to report
        silence_stdout()
    if a.cmd == "check" and info["mismatches"] or a.cmd in ("subleq", "tm") and not info["matches_reference"] \
            or a.cmd == "export" and info.get("verify", {}).get("mismatches") \
            or a.cmd == "certify" and not info["certified"]:
        return 1
    return 3 if info.get("halted") is False else 0


if __name__ == "__main__":
    sys.exit(main())
