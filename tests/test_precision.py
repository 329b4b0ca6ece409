"""A dtype that cannot hold a model exactly is refused, or (by default) switched to float64 with a note; the
SUBLEQ CLI over 20-bit words runs the compiled float64 weights, not a float32 file (issue 17, faults)."""
import json
from pathlib import Path

import pytest
from hardwire.compiler.check.elaborate import check_file
from hardwire.compiler.core.errors import HardwireError
from hardwire.compiler.pipeline import compile_program
from hardwire.compiler.precision import EXACT_HALVES, fit
from hypothesis import given, settings
from hypothesis import strategies as st

import hardwire
from hardwire.cli.main import main
from hardwire.machines.subleq.program import FLOAT32_MAX_BITS

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = ROOT / "programs"
SUBLEQ = str(PROGRAMS / "subleq.hw")
ERR = "hardwire: error: "


@pytest.fixture(autouse=True)
def workdir(tmp_path, tmp_path_factory, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARDWIRE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    (tmp_path / "halt.sq").write_text("0 0 -1\n")   # mem[0] -= mem[0] = 0 <= 0: jump to -1, halt after one step
    return tmp_path


def one_line(capsys, args: list[str], code: int = 2) -> str:
    """Run the CLI; assert the exit code, one line on stderr, no traceback, nothing on stdout."""
    rc = main(args)
    out, err = capsys.readouterr()
    assert rc == code and err.count("\n") == 1 and "Traceback" not in err and out == "", (rc, out, err)
    return err.strip()


@settings(max_examples=12, deadline=None)
@given(st.integers(5, 53))
def test_fit_gives_the_proofs_limits(bits):
    """Derived from the weights alone: float32 holds SUBLEQ through 20-bit words and float64 through 49
    (proofs/subleq.md, "Precision": the widest sum is 5 * 2^bits - 2.5)."""
    c = compile_program(check_file(SUBLEQ, {"mem": 8, "bits": bits}))
    f = fit(c.tensors, c.config)
    if 5 * 2 ** bits < 2 ** 53:  # the sum is a float64 exactly: equal
        assert f.widest == 5 * 2 ** bits - 2.5
    else:  # past 2^53 the float64 sum itself rounds (to a multiple of 4 at 52 bits): equal to that rounding
        assert abs(f.widest - (5 * 2 ** bits - 2.5)) <= 2 ** (bits + 3 - 53) * 4
    assert f.holds("float32") == (bits <= FLOAT32_MAX_BITS) and f.holds("float64") == (bits <= 49)


@pytest.mark.parametrize("name", sorted(p.name for p in PROGRAMS.glob("*.hw")))
def test_every_program_fits_float32_at_its_defaults(name):
    c = compile_program(check_file(str(PROGRAMS / name)))
    f = fit(c.tensors, c.config)
    assert f.holds("float32") and (f.widest is None or f.widest < EXACT_HALVES["float32"])


@pytest.mark.parametrize("bits", [23, 32, 49])
@pytest.mark.parametrize("dense", [False, True])
def test_subleq_cli_over_22_bits_halts(capsys, bits, dense):
    """`0 0 -1` halts after one step at every width float64 holds, on both paths (it never halted from 23
    bits on: the float32 weight file rounded 2^25 + 6 to 2^25 + 8)."""
    args = ["subleq", "halt.sq", "--mem", "8", "--bits", str(bits), "--max-steps", "50", "--json",
            "--device", "cpu"] + (["--dense"] if dense else [])
    assert main(args) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["steps"], info["halted"], info["matches_reference"], info["dtype"]) == (1, True, True, "float64")


def test_subleq_cli_refuses_a_dtype_that_cannot_hold_it(capsys):
    line = one_line(capsys, ["subleq", "halt.sq", "--mem", "8", "--bits", "23", "--dtype", "float32"])
    assert line == (ERR + "subleq at 23-bit words cannot run exactly in float32: layer 1's MLP sums half-integers "
                    "up to 4.1943e+07, at or beyond float32's exact range 8.38861e+06 (2^23); use float64 "
                    "(--dtype float64; dtype=\"float64\" in the Python API)")
    line = one_line(capsys, ["subleq", "halt.sq", "--mem", "8", "--bits", "50"])
    assert line == (ERR + "subleq at 50-bit words cannot run exactly in float64: layer 1's MLP sums half-integers "
                    "up to 5.6295e+15, at or beyond float64's exact range 4.5036e+15 (2^52); no dtype hardwire "
                    "runs holds it; use narrower words")


def test_api_switches_to_float64_with_a_note(capsys):
    model = hardwire.compile_file(SUBLEQ, params={"mem": 8, "bits": 23}, device="cpu")
    assert capsys.readouterr().err == ("hardwire: note: subleq runs in float64: layer 1's MLP sums half-integers up "
                                       "to 4.1943e+07, beyond float32's exact 2^23\n")
    assert str(model.transformer.p("embed.tokens").dtype) == "torch.float64"
    r = model([0, 0, -1, 0, 0, 0, 0, 0])
    assert (r["steps"], r["halted"]) == (1, True)
    with pytest.raises(HardwireError, match="subleq cannot run exactly in float32"):
        hardwire.compile_file(SUBLEQ, params={"mem": 8, "bits": 23}, device="cpu", dtype="float32")
    hardwire.compile_file(SUBLEQ, params={"mem": 8, "bits": 20}, device="cpu")
    assert capsys.readouterr().err == ""   # float32 holds it: no note


def test_check_switches_and_refuses(capsys, tmp_path):
    line = one_line(capsys, ["check", SUBLEQ, "--param", "mem=8", "--param", "bits=23", "--dtype", "float32"])
    assert line.startswith(ERR + "subleq cannot run exactly in float32")


def test_a_weight_file_is_not_written_rounded(capsys, tmp_path):
    line = one_line(capsys, ["compile", SUBLEQ, "--param", "mem=8", "--param", "bits=23", "-o", "s.safetensors"])
    assert line == (ERR + "s.safetensors: a weight file stores float32, which cannot hold subleq exactly (layer 1's "
                    "MLP sums half-integers up to 4.1943e+07, beyond 2^23); run it from its source in float64 "
                    "(hardwire check --dtype float64, or the Python API)")
    assert not (tmp_path / "s.safetensors").exists() and not list(tmp_path.glob(".hardwire-*"))
