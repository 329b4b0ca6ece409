"""Bad input at every door of the CLI.

The contract: a bad program, argument, input or weight file is refused with ONE line on stderr that names
file:line:column or the offending value, exit code 2, no traceback, and no file created or changed; a loop
that reaches its step limit exits 3; a mismatch in `check` exits 1. Every test runs in a fresh folder with
relative paths, so the messages are exact; docs/errors.md lists them with the test that pins each one.
"""
from __future__ import annotations

import json
import os
import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hardwire.compiler.check.elaborate import check_file, check_source
from hardwire.compiler.core.errors import HardwireError
from hardwire.compiler.pipeline import compile_program
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from hardwire.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = ROOT / "programs"
ERR = "hardwire: error: "


@pytest.fixture(autouse=True)
def workdir(tmp_path: Path, tmp_path_factory, monkeypatch) -> Path:
    """Each test runs in its own empty folder (relative paths in messages), with a shared model cache."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARDWIRE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    return tmp_path


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """Weight files to run, compiled once: plain, distinct, looped (words) and generating programs."""
    folder = tmp_path_factory.mktemp("models")
    out = {}
    for name, params in (("reverse", None), ("sort_unique", None), ("subleq", {"mem": 16, "bits": 8}),
                         ("parity_cot", None)):
        out[name] = folder / f"{name}.safetensors"
        compile_program(check_file(str(PROGRAMS / f"{name}.hw"), params)).save(str(out[name]))
    return out


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under folder, by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(capsys, args: list[str], code: int = 2) -> str:
    """Run the CLI in the current folder; assert the exit code, one line on stderr, no traceback, nothing on
    stdout and no file created or changed; return the line."""
    before = snapshot(Path.cwd())
    rc = main(args)
    out, err = capsys.readouterr()
    assert rc == code, (rc, err)
    assert err.count("\n") == 1 and err.endswith("\n") and "Traceback" not in err, err
    assert out == ""
    assert snapshot(Path.cwd()) == before, "a refused command wrote or changed a file"
    return err[:-1]


def program(name: str, text: str) -> str:
    Path(name).write_text(text)
    return name


def copy_program(name: str) -> str:
    shutil.copy(PROGRAMS / name, name)
    return name


HEADER = "program f\nvocab {1, 2, 3}\nmax_len 5\n"


# ---- program files -----------------------------------------------------------------------------------------
def test_missing_program(capsys):
    assert refused(capsys, ["compile", "nope.hw", "-o", "out.safetensors"]) == \
        ERR + "nope.hw: cannot read file: No such file or directory"


def test_folder_as_program(capsys):
    os.mkdir("dir.hw")
    assert refused(capsys, ["compile", "dir.hw", "-o", "out.safetensors"]) == \
        ERR + "dir.hw: cannot read file: Is a directory"
    assert refused(capsys, ["check", "dir.hw"]) == ERR + "dir.hw: cannot read file: Is a directory"


def test_non_utf8_program_names_line_and_column(capsys):
    Path("bad.hw").write_bytes(HEADER.encode() + b"output y = tokens \xff\n")
    assert refused(capsys, ["compile", "bad.hw", "-o", "out.safetensors"]) == \
        ERR + "bad.hw:4:19: file is not UTF-8 text (byte 0xff)"


def test_empty_program(capsys):
    program("empty.hw", "")
    assert refused(capsys, ["compile", "empty.hw", "-o", "out.safetensors"]) == \
        ERR + "empty.hw:1:1: the program has no `vocab {...}` line"


def test_program_without_output(capsys):
    program("f.hw", HEADER + "x = tokens + 1\n")
    assert refused(capsys, ["compile", "f.hw", "-o", "out.safetensors"]) == \
        ERR + "f.hw: the program has no `output name = ...` line"


# ---- --param -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("param,message", [
    ("shift=abc", "--param expects name=integer, got 'shift=abc'"),
    ("shift=²", "--param expects name=integer, got 'shift=²'"),  # int() would take '²'... and fail
    ("shift=", "--param expects name=integer, got 'shift='"),
    ("=3", "--param expects name=integer, got '=3'"),
    ("shift", "--param expects name=integer, got 'shift'"),
    ("zzz=3", "caesar.hw: unknown param 'zzz'; the program declares ['shift']"),
])
def test_bad_param_values(capsys, param, message):
    copy_program("caesar.hw")
    assert refused(capsys, ["compile", "caesar.hw", "-o", "out.safetensors", "--param", param]) == ERR + message


def test_param_given_twice(capsys):
    copy_program("caesar.hw")
    assert refused(capsys, ["compile", "caesar.hw", "-o", "o.safetensors", "--param", "shift=1", "--param",
                            "shift=2"]) == ERR + "--param shift is given twice (1 and 2)"


def test_param_that_breaks_the_program_names_the_line(capsys):
    copy_program("parity_count.hw")
    assert refused(capsys, ["compile", "parity_count.hw", "-o", "o.safetensors", "--param", "n=0"]) == \
        ERR + "parity_count.hw:5:1: max_len must be a positive integer, got 0"
    assert refused(capsys, ["check", "parity_count.hw", "--param", "n=-3"]) == \
        ERR + "parity_count.hw:5:1: max_len must be a positive integer, got -3"



def test_require_refuses_the_sizes_a_program_is_wrong_for(capsys):
    """add_lsb's digit sums reach 19: with 5-bit words they would wrap. Its `require` line refuses that."""
    copy_program("add_lsb.hw")
    want = ERR + ("add_lsb.hw:9:1: this program requires bits >= 6, and here bits = 5: a digit sum reaches 19, "
                  "which needs 6-bit words")
    assert refused(capsys, ["compile", "add_lsb.hw", "-o", "o.safetensors", "--param", "bits=5", "--param", "n=7"]) \
        == want
    assert refused(capsys, ["check", "add_lsb.hw", "--param", "bits=5", "--param", "n=7"]) == want
    Path("r.hw").write_text(HEADER + "param k = 2\nrequire k + 1\noutput o = tokens\n")
    assert refused(capsys, ["check", "r.hw"]) == \
        ERR + "r.hw:5:9: `require k + 1` must be a true-or-false condition on params and constants"
    Path("r.hw").write_text(HEADER + "require tokens == 1\noutput o = tokens\n")
    assert refused(capsys, ["check", "r.hw"]) == \
        ERR + ("r.hw:4:9: `require tokens == 1` must be a true-or-false condition on params and constants "
               "(unknown name 'tokens' (defined so far: nothing yet))")
    Path("r.hw").write_text(HEADER + "param k = 2\nrequire k > 1 & k < 4\noutput o = tokens\n")
    assert main(["check", "r.hw", "--param", "k=3"]) == 0
    capsys.readouterr()
    assert refused(capsys, ["check", "r.hw", "--param", "k=4"]) == \
        ERR + "r.hw:5:1: this program requires k > 1 & k < 4, and here k = 4"


@given(st.integers(-50, 50), st.integers(-50, 50), st.sampled_from(["<", "<=", ">", ">=", "==", "!="]))
@settings(max_examples=60, deadline=None)
def test_require_holds_exactly_when_its_condition_does(k, c, op):
    """A `require` passes the params that satisfy it (as Python decides) and refuses the others by line."""
    import operator
    ops = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq,
           "!=": operator.ne}
    src = f"program r\nparam k = 0\nrequire k {op} {c}\nvocab {{0}}\nmax_len 2\noutput o = tokens\n"
    if ops[op](k, c):
        check_source(src, "r.hw", {"k": k})
    else:
        with pytest.raises(HardwireError) as e:
            check_source(src, "r.hw", {"k": k})
        assert (e.value.line, e.value.column) == (3, 1) and f"and here k = {k}" in e.value.message

# ---- -o and existing files ---------------------------------------------------------------------------------
def test_output_into_missing_folder(capsys):
    copy_program("reverse.hw")
    assert refused(capsys, ["compile", "reverse.hw", "-o", "missing/out.safetensors"]) == \
        ERR + f"-o missing/out.safetensors: the folder {Path.cwd() / 'missing'} does not exist; create it first"


def test_output_is_a_folder(capsys):
    copy_program("reverse.hw")
    os.mkdir("weights")
    assert refused(capsys, ["compile", "reverse.hw", "-o", "weights"]) == \
        ERR + "-o weights: is a folder; name a file in it"


def test_output_over_the_program_itself(capsys):
    copy_program("reverse.hw")
    assert refused(capsys, ["compile", "reverse.hw", "-o", "reverse.hw"]) == \
        ERR + "-o reverse.hw: would overwrite the input file itself"


def test_failed_compile_leaves_existing_output_unchanged(capsys):
    """A program error, a budget refusal: the old weight file keeps its bytes (refused() compares them)."""
    Path("out.safetensors").write_bytes(b"the previous weights")
    program("bad.hw", HEADER + "output y = tokens + * 2\n")
    assert refused(capsys, ["compile", "bad.hw", "-o", "out.safetensors"]) == \
        ERR + "bad.hw:4:21: syntax error: expected a value, found `*`"
    copy_program("reverse.hw")
    refused(capsys, ["compile", "reverse.hw", "-o", "out.safetensors", "--max-params", "100"])


def test_failed_write_leaves_existing_output_unchanged(capsys, monkeypatch):
    """The disk fills up halfway through the write: no partial file, no temp file, the old file intact."""
    import safetensors.numpy

    def full_disk(tensors, path, metadata=None):
        Path(path).write_bytes(b"half a file")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(safetensors.numpy, "save_file", full_disk)
    copy_program("reverse.hw")
    Path("out.safetensors").write_bytes(b"the previous weights")
    assert refused(capsys, ["compile", "reverse.hw", "-o", "out.safetensors"]) == \
        ERR + "out.safetensors: cannot write the weight file: No space left on device"


def test_interrupted_write_leaves_existing_output_unchanged(capsys, monkeypatch):
    """Ctrl-C halfway through the write: one line, exit 130, the old file intact and no temp file left."""
    import safetensors.numpy

    def interrupted(tensors, path, metadata=None):
        Path(path).write_bytes(b"half a file")
        raise KeyboardInterrupt
    monkeypatch.setattr(safetensors.numpy, "save_file", interrupted)
    copy_program("reverse.hw")
    Path("out.safetensors").write_bytes(b"the previous weights")
    assert refused(capsys, ["compile", "reverse.hw", "-o", "out.safetensors"], code=130) == "hardwire: interrupted"


def test_closed_stdout_is_not_an_error():
    """`hardwire compile ... | head -0`: the reader is gone before the summary is printed; no traceback."""
    import subprocess
    import sys
    copy_program("caesar.hw")
    p = subprocess.Popen([sys.executable, "-m", "hardwire", "compile", "caesar.hw", "-o", "out.safetensors"],
                         cwd=Path.cwd(), env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait() == 0 and err == "", err
    assert Path("out.safetensors").exists()


# ---- --max-params: a size budget, enforced before the weight matrices exist ----------------------------------
def test_max_params_names_the_size(capsys):
    copy_program("sort.hw")
    size = compile_program(check_file("sort.hw")).summary()
    want = (ERR + f"sort.hw:6:8: the compiled model would have {size['params']} parameters (layers "
            f"{size['layers']}, d_model {size['d_model']}, d_mlp {size['d_mlp']}), over the budget of 1000 "
            "(--max-params); the largest part is rank.minor (2 residual dims, 21 hidden units, an attention head: "
            "1,447 parameters, 23%); lower max_len or simplify the program")
    assert refused(capsys, ["compile", "sort.hw", "-o", "out.safetensors", "--max-params", "1000"]) == want
    assert refused(capsys, ["check", "sort.hw", "--max-params", "1000"]) == want
    assert main(["compile", "sort.hw", "-o", "out.safetensors", "--max-params", str(size["params"])]) == 0


def test_max_params_refuses_before_allocating(monkeypatch):
    """max_len 4000 would be 112 million parameters: refused with no dense matrix allocated."""
    from hardwire.compiler import wire

    def never(*args, **kwargs):
        raise AssertionError("a dense weight matrix was allocated")
    monkeypatch.setattr(wire, "embed", never)
    monkeypatch.setattr(wire, "dense_head", never)
    prog = check_file(str(PROGRAMS / "parity_count.hw"), {"n": 4000})
    with pytest.raises(HardwireError, match=r"would have \d+ parameters \(layers 2, d_model 4007"):
        compile_program(prog, max_params=1_000_000)


@pytest.mark.parametrize("name", sorted(p.name for p in PROGRAMS.glob("*.hw")))
def test_max_params_predicts_the_exact_size(name):
    """The size planned before allocation is the size built: one parameter under it is refused, naming it."""
    params = compile_program(check_file(str(PROGRAMS / name))).summary()["params"]
    with pytest.raises(HardwireError, match=f"would have {params} parameters"):
        compile_program(check_file(str(PROGRAMS / name)), max_params=params - 1)


# ---- determinism -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["reverse.hw", "sort.hw", "caesar.hw", "add_lsb.hw", "parity_cot.hw",
                                  "turing_loop.hw"])
def test_compiles_are_byte_identical(name, capsys):
    copy_program(name)
    for out in ("a.safetensors", "b.safetensors", "a.safetensors"):  # the last one overwrites a.safetensors
        assert main(["compile", name, "-o", out]) == 0
    assert Path("a.safetensors").read_bytes() == Path("b.safetensors").read_bytes()
    assert sorted(os.listdir()) == sorted([name, "a.safetensors", "b.safetensors"])  # no temp file left
    assert oct(os.stat("a.safetensors").st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _sources() -> list:
    """Every program in programs/ and every example of docs/language.md, as (name, text)."""
    doc = (ROOT / "docs" / "language.md").read_text()
    examples = re.findall(r"^```hw(?![^\n]*\brefused\b)[^\n]*\n(.*?)^```", doc, re.S | re.M)  # not a mistake shown
    return [(p.name, p.read_text()) for p in sorted(PROGRAMS.glob("*.hw"))] + \
        [(f"language.md#{i}", text) for i, text in enumerate(examples)]


@pytest.mark.parametrize("name,text", _sources(), ids=[n for n, _ in _sources()])
def test_every_program_round_trips_through_a_file(name, text):
    """The loader's header check accepts every weight file the compiler writes (every construct, every tensor
    kind), and the loaded model is the compiled one."""
    from hardwire.runtime.model import from_compiled, load
    compiled = compile_program(check_source(text, name))
    compiled.save("m.safetensors")
    model, fresh = load("m.safetensors", "cpu"), from_compiled(compiled, "cpu")
    assert model.config == compiled.config and model.outputs == compiled.outputs
    assert model.w.keys() == fresh.w.keys() and all(torch.equal(model.w[k], fresh.w[k]) for k in model.w)


# ---- inputs to `run` ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("model,text,message", [
    ("reverse", "", "the input is empty; give at least one token"),
    ("reverse", "  \t ", "the input is empty; give at least one token"),
    ("sort_unique", "1 1 2", "token 1 at position 1 repeats, and this program is `distinct`"),
    ("subleq", "0 0 x", "'x' is not an integer, and this program reads words"),
    ("subleq", "0 0 300", "token 300 at position 2 is not a 8-bit word [-128, 127]"),
    ("subleq", " ".join(["0"] * 17), "input has 17 tokens but max_len is 16"),
    ("parity_cot", "1 2", "token '2' at position 1 is not in the vocabulary [0, 1, '=']"),
    ("parity_cot", "", "the input is empty; give at least one token"),
])
def test_bad_run_inputs(capsys, models, model, text, message):
    """Plain, distinct, looped (with a --trace file that must not appear) and generating programs."""
    assert refused(capsys, ["run", str(models[model]), "--input", text, "--device", "cpu", "--trace",
                            "trace.jsonl"]) == ERR + message


def test_empty_input_is_refused_the_same_everywhere(models):
    """An empty input is not a valid input for any program: the interpreter and the model both refuse it."""
    from hardwire.compiler.interpret import execute, run
    from hardwire.runtime.generate import generate
    from hardwire.runtime.loop import run_loop
    from hardwire.runtime.model import load
    message = "the input is empty; give at least one token"
    for name in ("reverse", "subleq", "parity_cot"):
        prog = check_file(str(PROGRAMS / f"{name}.hw"), {"mem": 16, "bits": 8} if name == "subleq" else None)
        model = load(str(models[name]), "cpu")
        calls = [lambda: run(prog, []), lambda: execute(prog, [], 10), lambda: model.encode([[]])]
        calls.append({"reverse": lambda: model.run([[]]), "subleq": lambda: run_loop(model, [[]], max_steps=3),
                      "parity_cot": lambda: generate(model, [[]])}[name])
        for call in calls:
            with pytest.raises(HardwireError) as e:
                call()
            assert str(e.value) == message


@pytest.mark.parametrize("device,message", [
    ("foo", "--device 'foo' is not a device name; use cpu or cuda"),
    ("cuda:0", "--device cuda:0 is not available here ("),
])
def test_bad_device(capsys, models, device, message):
    if device.startswith("cuda") and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    line = refused(capsys, ["run", str(models["reverse"]), "--input", "a", "--device", device])
    assert line.startswith(ERR + message) and line.endswith("use --device cpu" if "cuda" in device else "cuda")


# ---- weight files ------------------------------------------------------------------------------------------
def tampered(src: Path, dst: str, tensors=None, meta=None) -> None:
    """A copy of src with its tensors and/or its hardwire metadata changed in place by the given functions."""
    t = load_file(str(src))
    with safe_open(str(src), "np") as f:
        m = json.loads(f.metadata()["hardwire"])
    if tensors is not None:
        tensors(t)
    if meta is not None:
        meta(m)
    save_file(t, dst, metadata={"hardwire": json.dumps(m)})


def _set(path: str, value):
    def change(m: dict) -> None:
        *keys, last = path.split(".")
        node = m
        for k in keys:
            node = node[int(k)] if isinstance(node, list) else node[k]
        if value is KeyError:
            del node[last]
        else:
            node[last] = value
    return change


TAMPER = {  # id: (tensors change, metadata change, expected message given the good file's config)
    "wrong shape": (lambda t: t.update({"layers.0.attn.W_Q": t["layers.0.attn.W_Q"][:, :10, :]}), None,
                    lambda c: f"tensor 'layers.0.attn.W_Q' has shape [1, 10, {c['layers'][0]['d_head']}], expected "
                              f"[1, {c['d_model']}, {c['layers'][0]['d_head']}]"),
    "missing tensor": (lambda t: t.pop("layers.1.mlp.W_in"), None, lambda c: "tensor 'layers.1.mlp.W_in' is missing"),
    "extra tensor": (lambda t: t.update({"backdoor": np.ones(3, np.float32)}), None,
                     lambda c: "unexpected tensor 'backdoor'"),
    "NaN weight": (lambda t: t["layers.1.mlp.W_out"].__setitem__((0, 0), np.nan), None,
                   lambda c: "tensor 'layers.1.mlp.W_out' holds NaN or infinite values"),
    "n_layers": (None, _set("config.n_layers", 7),
                 lambda c: f"config.n_layers is 7 but config.layers describes {c['n_layers']}"),
    "max_len": (None, _set("config.max_len", 100000),
                lambda c: f"tensor 'embed.positions' has shape [{c['max_len'] + 1}, {c['d_model']}], expected "
                          f"[100001, {c['d_model']}]"),
    "heads": (None, _set("config.layers.0.heads", 5),
              lambda c: f"tensor 'layers.0.attn.W_K' has shape [1, {c['d_model']}, {c['layers'][0]['d_head']}], "
                        f"expected [5, {c['d_model']}, {c['layers'][0]['d_head']}]"),
    "vocab removed": (None, _set("config.vocab", KeyError), lambda c: "config.vocab is missing or invalid (None)"),
    "output dims": (None, _set("outputs.reversed.dims", [9999]),
                    lambda c: f"output 'reversed' reads dims [9999], not indices below d_model {c['d_model']}"),
    "labels": (None, lambda m: m["labels"].pop(), lambda c: f"{c['d_model'] - 1} residual labels for d_model "
                                                            f"{c['d_model']}"),
    "config not an object": (None, _set("config", "hello"),
                             lambda c: "the header needs a config object, a labels list and an outputs object"),
}


@pytest.mark.parametrize("case", list(TAMPER), ids=list(TAMPER))
def test_tampered_weight_file(capsys, models, case):
    tensors, meta, message = TAMPER[case]
    with safe_open(str(models["reverse"]), "np") as f:
        config = json.loads(f.metadata()["hardwire"])["config"]
    tampered(models["reverse"], "bad.safetensors", tensors, meta)
    assert refused(capsys, ["run", "bad.safetensors", "--input", "a b", "--device", "cpu"]) == \
        ERR + "bad.safetensors: corrupt weight file: " + message(config)


@pytest.mark.parametrize("case,message", [
    ("no header", "not a hardwire weight file (no hardwire/2 header); compile one with "
                  "`hardwire compile PROG.hw -o OUT.safetensors`"),
    ("format foreign/1", "not a hardwire weight file (no hardwire/2 header); compile one with "
                         "`hardwire compile PROG.hw -o OUT.safetensors`"),
    ("header not JSON", "corrupt or foreign weight file (Expecting property name enclosed in double quotes: "
                        "line 1 column 2 (char 1))"),
    ("header a list", "not a hardwire weight file (no hardwire/2 header); compile one with "
                      "`hardwire compile PROG.hw -o OUT.safetensors`"),
])
def test_foreign_header(capsys, models, case, message):
    t = load_file(str(models["reverse"]))
    meta = {"no header": None, "format foreign/1": {"hardwire": json.dumps({"format": "foreign/1"})},
            "header not JSON": {"hardwire": "{not json"}, "header a list": {"hardwire": "[1, 2]"}}[case]
    save_file(t, "bad.safetensors", metadata=meta)
    assert refused(capsys, ["run", "bad.safetensors", "--input", "a", "--device", "cpu"]) == \
        ERR + "bad.safetensors: " + message


@pytest.mark.parametrize("old", ["hardwire/1", "hardwire/3"])
def test_other_format_version(capsys, models, old):
    # a hardwire/1 file wrote fractions as "a/b" strings and tuples as lists: its values would decode wrongly
    tampered(models["reverse"], "old.safetensors", meta=_set("format", old))
    assert refused(capsys, ["run", "old.safetensors", "--input", "a", "--device", "cpu"]) == \
        ERR + f"old.safetensors: weight file format '{old}', but this hardwire reads hardwire/2; recompile it with " \
              "`hardwire compile PROG.hw -o OUT.safetensors`"


@pytest.mark.parametrize("value,shown", [({"frac": "2/1"}, '{"frac": "2/1"}'), ([1, 2], "[1, 2]"),
                                         ({"frac": "1/3", "x": 1}, '{"frac": "1/3", "x": 1}'), (0.5, "0.5")])
def test_value_that_is_not_a_hardwire_value(capsys, models, value, shown):
    def change(m: dict) -> None:
        m["outputs"]["reversed"]["values"][0] = value
    tampered(models["reverse"], "bad.safetensors", meta=change)
    assert refused(capsys, ["run", "bad.safetensors", "--input", "a", "--device", "cpu"]) == \
        ERR + f"bad.safetensors: corrupt weight file: output 'reversed' lists {shown}, not a hardwire/2 value"


@pytest.mark.parametrize("cut,message", [
    (lambda b: b[:-100], "incomplete metadata, file not fully covered"),
    (lambda b: b[:4], "header too small"),
    (lambda b: b"", "header too small"),
    (lambda b: b[:20] + bytes([b[20] ^ 0xFF]) + b[21:], "invalid UTF-8 in header: invalid utf-8 sequence of 1 bytes "
                                                        "from index 12"),
], ids=["truncated data", "truncated header", "empty file", "flipped header byte"])
def test_truncated_or_damaged_weight_file(capsys, models, cut, message):
    Path("bad.safetensors").write_bytes(cut(models["reverse"].read_bytes()))
    assert refused(capsys, ["run", "bad.safetensors", "--input", "a", "--device", "cpu"]) == \
        ERR + f"bad.safetensors: corrupt or foreign weight file (Error while deserializing header: {message})"


def test_folder_as_weight_file(capsys):
    os.mkdir("weights")
    assert refused(capsys, ["run", "weights", "--input", "a"]) == ERR + "weights: is a folder, not a weight file"


class Trap:
    """Unpickling this creates the file `marker`: proof that a loader ran pickle."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("how", ["torch.save", "pickle"])
def test_pickle_is_refused_without_unpickling(capsys, monkeypatch, tmp_path_factory, how):
    marker = str(tmp_path_factory.mktemp("trap") / "unpickled")
    weights = {"embed.tokens": torch.zeros(2, 2), "trap": Trap(marker)}
    if how == "torch.save":
        torch.save(weights, "model.safetensors")
    else:
        with open("model.safetensors", "wb") as f:
            pickle.dump(weights, f, protocol=4)

    def no_unpickling(*args, **kwargs):
        raise AssertionError("the loader unpickled")
    with monkeypatch.context() as m:
        for module, name in ((torch, "load"), (pickle, "load"), (pickle, "loads")):
            m.setattr(module, name, no_unpickling)
        assert refused(capsys, ["run", "model.safetensors", "--input", "a", "--device", "cpu"]) == \
            ERR + "model.safetensors: a pickle or zip file (e.g. from torch.save), not safetensors; hardwire reads " \
                  "safetensors only and never unpickles"
    assert not os.path.exists(marker)
    with open("model.safetensors", "rb") as f:  # the trap is live: unpickling the same file does create the marker
        torch.load(f, weights_only=False) if how == "torch.save" else pickle.load(f)
    assert os.path.exists(marker)


# ---- loops: the step limit ---------------------------------------------------------------------------------
def test_run_step_limit_exits_3(capsys, models):
    assert main(["run", str(models["subleq"]), "--input", "0 0 0", "--device", "cpu", "--max-steps", "5"]) == 3
    assert capsys.readouterr().out.endswith("steps: 5 (step limit reached)\n")
    assert main(["run", str(models["subleq"]), "--input", "0 0 0", "--device", "cpu", "--max-steps", "5",
                 "--json"]) == 3
    info = json.loads(capsys.readouterr().out)
    assert (info["steps"], info["halted"]) == (5, False)


def test_tm_step_limit_exits_3(capsys):
    assert main(["tm", "1RB1LA_0LA0RB", "--max-steps", "12", "--device", "cpu"]) == 3
    assert "12 steps, did not halt (step limit)" in capsys.readouterr().out


@pytest.mark.parametrize("args,message", [
    (["run", "m.safetensors", "--input", "a", "--max-steps", "0"],
     "hardwire run: error: argument --max-steps: expected a positive integer, got '0' (see hardwire run --help)"),
    (["check", "p.hw", "--max-steps", "-1"],
     "hardwire check: error: argument --max-steps: expected a positive integer, got '-1' (see hardwire check --help)"),
    (["subleq", "i.sq", "--max-steps", "0"],
     "hardwire subleq: error: argument --max-steps: expected a positive integer, got '0' (see hardwire subleq --help)"),
    (["tm", "1RB1LB_1LA1RZ", "--max-steps", "-5"],
     "hardwire tm: error: argument --max-steps: expected a positive integer, got '-5' (see hardwire tm --help)"),
    (["tm", "1RB1LB_1LA1RZ", "--tape", "-3"],
     "hardwire tm: error: argument --tape: expected a positive integer, got '-3' (see hardwire tm --help)"),
    (["check", "p.hw", "--samples", "0"],
     "hardwire check: error: argument --samples: expected a positive integer, got '0' (see hardwire check --help)"),
    (["compile", "p.hw", "-o", "o.safetensors", "--max-params", "lots"],
     "hardwire compile: error: argument --max-params: expected a positive integer, got 'lots' "
     "(see hardwire compile --help)"),
    (["compile", "p.hw"],
     "hardwire compile: error: the following arguments are required: -o/--output (see hardwire compile --help)"),
    (["check", "p.hw", "--dtype", "float16"], "hardwire check: error: argument --dtype: invalid choice: "),
    (["frobnicate"], "hardwire: error: argument cmd: invalid choice: 'frobnicate' "),
])
def test_bad_arguments_are_one_line(capsys, args, message):
    line = refused(capsys, args)
    assert line.startswith(message) and line.endswith("--help)"), line


def test_trace_into_missing_folder(capsys, models):
    where = Path.cwd() / "nodir"
    assert refused(capsys, ["run", str(models["subleq"]), "--input", "0 0 0", "--device", "cpu", "--trace",
                            "nodir/t.jsonl"]) == \
        ERR + f"--trace nodir/t.jsonl: the folder {where} does not exist; create it first"
    Path("loop.sq").write_text("0 0 0\n")
    assert refused(capsys, ["subleq", "loop.sq", "--mem", "16", "--bits", "8", "--trace", "nodir/t.jsonl"]) == \
        ERR + f"--trace nodir/t.jsonl: the folder {where} does not exist; create it first"


def test_check_mismatch_exits_1(capsys, monkeypatch):
    """The exit code for a model that disagrees with the interpreter (the comparison is stubbed to disagree)."""
    import hardwire.cli.check

    def one_mismatch(prog, model, samples, seed=0, max_steps=10_000):
        return {"samples": samples, "mismatches": 1, "run_s": 0.0,
                "examples": [{"input": ["a"], "model": {"reversed": ["b"]}, "interpreter": {"reversed": ["a"]}}]}
    monkeypatch.setattr(hardwire.cli.check, "compare", one_mismatch)
    copy_program("reverse.hw")
    assert main(["check", "reverse.hw", "--samples", "3", "--device", "cpu"]) == 1
    assert "mismatch on ['a']" in capsys.readouterr().out


# ---- SUBLEQ images and Turing machine specs (beyond tests/test_subleq_cli.py and tests/test_tm.py) ------------
@pytest.mark.parametrize("name,data,args,message", [
    ("empty.sq", b"# nothing here\n", [],
     "empty.sq: the image holds no words (all-zero memory loops forever at address 0)"),
    ("bin.sq", b"1 2 \xff 3\n", [], "bin.sq:1:5: file is not UTF-8 text (byte 0xff)"),
    ("bad.sqa", b"start: foo bar\n", ["--asm"], "bad.sqa:1:8: unknown label 'foo'"),
    ("ok.sq", b"0 0 -1\n", ["--bits", "100"], "--bits 100: a word has 2 to 53 bits"),
    ("dir.sq", None, [], "dir.sq: cannot read file: Is a directory"),
])
def test_bad_subleq_images(capsys, name, data, args, message):
    if data is None:
        os.mkdir(name)
    else:
        Path(name).write_bytes(data)
    assert refused(capsys, ["subleq", name, "--mem", "16", "--bits", "8", *args, "--device", "cpu"]) == ERR + message


@pytest.mark.parametrize("args,message", [
    (["1RB1LB_1LA1RZ", "--input", "0120"], "input tape symbol '2' is not one of 0..1"),
    (["_".join(["1RB1LB"] * 26)], "26 states: at most 25 (A..Y; Z halts)"),
    (["1RB1LB_1LA1RZ", "--tape", "2"], "the machine visits cells -2..1 (4 cells), more than --tape 2; raise --tape "
                                       "to at least 4"),
    (["1RB1LA_0LA0RB", "--mode", "cot", "--encoding", "cells", "--max-steps", "70000"],
     "a chain of thought of 70001 tokens is more than 65536; lower --max-steps (long runs: --mode loop)"),
    (["1RB1LA_0LA0RB", "--mode", "cot", "--max-steps", "2000000000"],
     "a chain of thought of up to 2000000002 tokens (--max-steps 2000000000) is more than 1073741824; lower "
     "--max-steps (long runs: --mode loop)"),
])
def test_bad_tm_specs_and_tapes(capsys, args, message):
    assert refused(capsys, ["tm", *args, "--device", "cpu"]) == ERR + message


# ---- docs/errors.md ---------------------------------------------------------------------------------------
def test_every_row_of_docs_errors_names_a_real_test():
    """docs/errors.md's last column names tests as E::name, F::name[param] or tests/x.py::name, and ::name
    for another test of the same module: each must exist."""
    short = {"E": "tests/test_errors.py", "F": "tests/test_parser_fuzz.py"}
    rows = [r for r in (ROOT / "docs" / "errors.md").read_text().splitlines()
            if r.startswith("| ") and not r.startswith("| Bad input")]
    assert len(rows) >= 60
    for row in rows:
        module = None
        for ref in row.rstrip(" |").rsplit("|", 1)[1].split(","):
            m = re.fullmatch(r"(E|F|tests/\w+\.py)?::(\w+)(?:\[([\w-]+)\])?", ref.strip())
            assert m, f"no test named in: {row}"
            module = short.get(m.group(1), m.group(1)) or module
            source = (ROOT / module).read_text()
            assert f"def {m.group(2)}(" in source, f"{module}::{m.group(2)} does not exist"
            assert m.group(3) is None or f'"{m.group(3)}"' in source, f"no case {m.group(3)} in {module}"


# ---- once a gap (a MemoryError before any check), now a bound on max_len in elaborate.py ----
def test_huge_max_len_is_refused_with_its_line(capsys):
    program("big.hw", "program big\nvocab {1}\nmax_len 1000000000000\noutput y = tokens\n")
    line = refused(capsys, ["compile", "big.hw", "-o", "out.safetensors", "--max-params", "1000000"])
    assert re.match(re.escape(ERR) + r"big\.hw:3:\d+: ", line), line
