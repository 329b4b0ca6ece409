"""Argument helpers every command module shares (imported by main and by the commands; never from main)."""
from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, NoReturn

from hardwire.compiler.core.errors import HardwireError
from hardwire.compiler.size_budget import DEFAULT_MAX_PARAMS

if TYPE_CHECKING:
    from hardwire.compiler.core.sops import Program

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


def load_program(path: str, params: list[str] | None, strict: bool = False) -> Program:
    """Read and check a .hw file; unreadable files and bad UTF-8 are errors naming the file (and line:column).
    The checker's warnings go to stderr, one line each (with --strict they are errors)."""
    from hardwire.compiler.check.elaborate import check_source
    from hardwire.compiler.check.source import read_text
    from hardwire.compiler.validate import refuse_weights
    refuse_weights(path)  # a weight file given where a program goes: say so, and the command that runs it
    prog = check_source(read_text(path), path, params_arg(params), strict=strict)
    for w in prog.warnings:
        print(f"hardwire: warning: {w} (--strict makes this an error)", file=sys.stderr)
    return prog


def silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush does not fail on a closed pipe again."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (e.g. captured in a test)
        pass


def show(v) -> str:
    return "none" if v is None else str(v)


def add_program_options(p) -> None:
    """--param and --max-params: for the commands that compile a program."""
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="set a compile-time param")
    p.add_argument("--max-params", type=positive_int, default=DEFAULT_MAX_PARAMS, metavar="N",
                   help="refuse a program whose model would have more than N parameters, naming the value "
                        f"responsible, before building it (default {DEFAULT_MAX_PARAMS:,})")
    p.add_argument("--strict", action="store_true",
                   help="refuse the program on a warning (a comparison with a literal that never matches)")


def add_run_options(p) -> None:
    """--device and --max-steps: for the commands that run a model."""
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--max-steps", type=positive_int, default=10_000, help="step limit for a program with a loop")


def add_json_option(p) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object")
