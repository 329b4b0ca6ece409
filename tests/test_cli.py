"""The CLI contract: results on stdout, bad input as one line with exit code 2, no partial files."""
import json
import os
from pathlib import Path

from hardwire.cli.main import main

PROGRAMS = Path(__file__).resolve().parent.parent / "programs"


def test_compile_run_check(tmp_path, capsys):
    out = tmp_path / "rev.safetensors"
    assert main(["compile", str(PROGRAMS / "reverse.hw"), "-o", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["layers"] >= 1 and info["params"] > info["nonzero_params"] > 0
    assert main(["run", str(out), "--input", "a b c d", "--device", "cpu", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["outputs"]["reversed"] == ["d", "c", "b", "a"]
    assert main(["check", str(PROGRAMS / "histogram.hw"), "--samples", "50", "--json", "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out)["mismatches"] == 0


def bad(args, capsys, needle):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and needle in err and "Traceback" not in err, err


def test_syntax_error_names_place(tmp_path, capsys):
    p = tmp_path / "bad.hw"
    p.write_text("program x\nvocab {1}\nmax_len 4\noutput y = tokens + * 2\n")
    out = tmp_path / "o.safetensors"
    bad(["compile", str(p), "-o", str(out)], capsys, f"{p}:4:")
    assert not out.exists()


def test_unknown_name(tmp_path, capsys):
    p = tmp_path / "bad.hw"
    p.write_text("program x\nvocab {1}\nmax_len 4\noutput y = tokenz\n")
    bad(["compile", str(p), "-o", str(tmp_path / "o.safetensors")], capsys, "unknown name 'tokenz'")


def test_ambiguous_aggregate_rejected(tmp_path, capsys):
    p = tmp_path / "bad.hw"
    p.write_text("program x\nvocab {1, 2}\nmax_len 4\noutput y = aggregate(select(tokens, tokens, ==), tokens)\n")
    bad(["compile", str(p), "-o", str(tmp_path / "o.safetensors")], capsys, "at most one position")


def test_bad_inputs_and_files(tmp_path, capsys):
    out = tmp_path / "rev.safetensors"
    assert main(["compile", str(PROGRAMS / "reverse.hw"), "-o", str(out)]) == 0
    capsys.readouterr()
    bad(["run", str(out), "--input", "a z", "--device", "cpu"], capsys, "not in the vocabulary")
    bad(["run", str(out), "--input", " ".join("a" * 17), "--device", "cpu"], capsys, "max_len is 16")
    bad(["run", str(tmp_path / "missing.safetensors"), "--input", "a"], capsys, "no such weight file")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(os.urandom(64))
    bad(["run", str(junk), "--input", "a"], capsys, "corrupt or foreign")
    trunc = tmp_path / "trunc.safetensors"
    trunc.write_bytes(out.read_bytes()[:200])
    bad(["run", str(trunc), "--input", "a"], capsys, "weight file")
    bad(["compile", str(tmp_path / "nope.hw"), "-o", str(tmp_path / "x.safetensors")], capsys, "cannot read")


def test_compile_is_deterministic(tmp_path):
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    for o in (a, b):
        assert main(["compile", str(PROGRAMS / "dyck1.hw"), "-o", str(o)]) == 0
    assert a.read_bytes() == b.read_bytes()


def test_wiring_refusals_name_file_line_column(tmp_path, capsys):
    p = tmp_path / "mix.hw"
    p.write_text("program b\nvocab {0, 1}\nmax_len 4\nx = scalar(tokens)\n"
                 "output y = map((a, b) -> a * b, aggregate(select(indices, indices, <=), x), x)\n")
    out = tmp_path / "o.safetensors"
    bad(["compile", str(p), "-o", str(out)], capsys, f"{p}:5:12:")
    p.write_text("program b\nvocab {0, 1, 2}\nmax_len 300\n"   # a `|` across keys over its pair budget
                 "output y = width(select(indices, indices, ==) | select(tokens, tokens, <))\n")
    bad(["compile", str(p), "-o", str(out)], capsys, f"{p}:4:18:")
    assert not out.exists()


def test_make_demo_checks_programs_through_the_cli_parser():
    """`make demo` builds its checks with the CLI's own parser (a hand-built argparse.Namespace once missed a
    new option and broke it)."""
    from hardwire.bench import demo
    rows = demo.run(3, ["caesar", "dyck2"])
    assert [(r["program"], r["samples"], r["mismatches"]) for r in rows] == [("caesar", 3, 0), ("dyck2", 3, 0)]
    assert rows[1]["layers"] == 4
