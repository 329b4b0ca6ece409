"""The `hardwire` command line: one module per command in this package, dispatched from COMMANDS.

Bad input: one line on stderr, exit 2. check: exit 1 on mismatches. A loop that reaches its step limit
without halting: exit 3.
"""
from __future__ import annotations

import importlib
import json
import sys

from hardwire.cli.args import ArgParser, check_device, silence_stdout
from hardwire.compiler.core.errors import HardwireError
from hardwire.harness import json_row

# name -> (module, its command function, its renderer): every module has add_parser(sub)
COMMANDS = {
    "compile": ("compile", "cmd_compile", "render"),
    "run": ("run", "cmd_run", "render"),
    "check": ("check", "cmd_check", "render"),
    "subleq": ("subleq", "cmd_subleq", "render_subleq"),
    "tm": ("tm", "cmd_tm", "render_tm"),
    "bench": ("bench", "cmd_bench", "render"),
    "sweep": ("sweep", "cmd_sweep", "render"),
    "export": ("export", "cmd_export", None),
    "explain": ("explain", "cmd_explain", None),
    "certify": ("certify", "cmd_certify", "render_certify"),
}


def command(name: str):
    """The module of one command (imported when used, so `hardwire compile` does not load torch)."""
    return importlib.import_module(f"hardwire.cli.{COMMANDS[name][0]}")


def render(cmd: str, info: dict) -> str:
    """The text a command prints (without --json)."""
    fn = COMMANDS[cmd][2]
    if fn is not None:
        return getattr(command(cmd), fn)(info)
    return "\n".join(f"{k}: {v}" for k, v in info.items())


def parser() -> ArgParser:
    """The command line: every subcommand and its options (main parses with it; `make demo` builds checks)."""
    ap = ArgParser(prog="hardwire", description="Compile small programs into exact transformer weights.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in COMMANDS:
        command(name).add_parser(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = parser()
    try:
        a = ap.parse_args(argv)
    except SystemExit as e:  # --help (0), or a bad argument already reported on one line (2)
        return e.code if isinstance(e.code, int) else 0
    try:
        check_device(getattr(a, "device", None))
        info = getattr(command(a.cmd), COMMANDS[a.cmd][1])(a)
    except HardwireError as e:
        print(f"hardwire: error: {e}", file=sys.stderr)
        if sys.stderr.isatty():  # a person at a terminal also sees the line and a caret; logs and pipes get one line
            from hardwire.compiler.check.messages import excerpt_for
            if excerpt := excerpt_for(e):
                print(excerpt, file=sys.stderr)
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
