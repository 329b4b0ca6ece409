"""`hardwire compile PROG.hw -o M.safetensors`: check, compile and save a program; prints its sizes."""
from __future__ import annotations

from hardwire.cli.args import add_json_option, add_program_options, check_output, load_program


def add_parser(sub) -> None:
    c = sub.add_parser("compile", help="compile PROG.hw into a safetensors weight file")
    c.add_argument("program")
    c.add_argument("-o", "--output", required=True)
    c.add_argument("--positions", choices=["auto", "table", "formula"], default="auto",
                   help="how the position rows are stored: a table of max_len + 1 rows, or (where no value is a "
                        "function of indices) a formula of two rows; auto: the formula past 2^20 rows")
    add_program_options(c)
    add_json_option(c)


def cmd_compile(a) -> dict:
    from hardwire.compiler.pipeline import compile_program
    check_output(a.output, "-o", a.program)
    prog = load_program(a.program, a.param, a.strict)
    model = compile_program(prog, a.max_params, a.positions)
    model.save(a.output)
    info = {**model.summary(), "compile_s": model.compile_s, "output": a.output, "largest": model.largest}
    return info


def render(info: dict) -> str:
    """The sizes, one `key: value` a line, then where the parameters go (the values with the largest shares)."""
    lines = [f"{k}: {v}" for k, v in info.items() if k != "largest"]
    if info.get("largest"):
        lines.append("largest parts:")
        for p in info["largest"]:
            at = f" at {p['line']}:{p['column']}" if p["line"] and not p["value"].startswith("the value at") else ""
            lines.append(f"  {p['value']}{at}: {p['percent']:g}% of the parameters, {p['why']}")
        lines.append(f"hint: {info['largest'][0]['hint']}")
    return "\n".join(lines)
