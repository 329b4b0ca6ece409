"""`hardwire sweep`: lengths, mismatches against the Python reference or the interpreter, bad arguments."""
import json
from pathlib import Path

from hardwire.cli.main import main

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"


def test_sweep_parity_and_addition(capsys):
    assert main(["sweep", str(PROGRAMS / "parity_count.hw"), "--lengths", "4,16", "--samples", "3", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["reference"] == "python" and info["max_exact_length"] == 16
    assert [r["mismatches"] for r in info["rows"]] == [0, 0]
    assert main(["sweep", str(PROGRAMS / "add_lsb.hw"), "--lengths", "3,20", "--samples", "4", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["max_exact_length"] == 20


def test_sweep_against_the_interpreter(tmp_path, capsys):
    prog = tmp_path / "rev.hw"
    prog.write_text("program rev\nparam n = 4\nvocab {1, 2, 3}\nmax_len n\n"
                    "output r = aggregate(select(indices, length - indices - 1, ==), tokens)\n")
    assert main(["sweep", str(prog), "--lengths", "4,12", "--samples", "5", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["reference"] == "interpreter" and info["max_exact_length"] == 12


def test_sweep_needs_a_length_param(capsys):
    assert main(["sweep", str(PROGRAMS / "reverse.hw"), "--lengths", "4,8", "--samples", "3"]) == 2
    assert "unknown param 'n'" in capsys.readouterr().err


def test_bad_lengths(capsys):
    assert main(["sweep", str(PROGRAMS / "parity_count.hw"), "--lengths", "8,x"]) == 2
    assert "comma-separated integers" in capsys.readouterr().err
