"""`hardwire bench programs|subleq|tm --quick`: what CI runs (small sizes, CPU), and the shape of the JSON it writes.

No assertion here is on a time, a speed or a ratio of speeds (a rate rounded to 0 on a loaded machine failed
`> 0`): the timings are only checked to be reported (`reported`); sizes and exactness are asserted.
"""
import importlib.util
import json

import pytest

from hardwire.cli.main import main

BATCHES = ("batch_1", "batch_64", "batch_1024")


@pytest.fixture(autouse=True)
def cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("HARDWIRE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def reported(row: dict, *keys: str) -> None:
    """Each key is present and a number: a timing is reported, whatever its value on this machine."""
    for key in keys:
        assert isinstance(row[key], (int, float)) and not isinstance(row[key], bool), (key, row[key])


def check_device_shape(dev: dict, rate_key: str = "steps_per_s") -> None:
    """Per batch size: the headline rate (the fast path), both paths with their own rates, all exact."""
    for b in BATCHES:
        row = dev[b]
        assert row["exact"] is True
        reported(row, rate_key, "fast_over_dense")
        reported(row["fast"], "steps_per_s")
        reported(row["dense"], "steps_per_s")
    p = dev["per_pass"]
    assert 0 < p["fast_flops"] < p["dense_flops"] and 0 < p["fast_bytes"] < p["dense_bytes"]
    roof = dev["roofline_h100"]
    assert roof["peaks"]["float32_flops_per_s"] == 67e12 and roof["peaks"]["bytes_per_s"] == 3.35e12
    assert roof["peaks"]["source"].startswith("NVIDIA H100")
    for path in ("dense", "fast"):
        assert set(roof[path]) == set(BATCHES)
        assert all(r["bound"] in ("memory", "compute") for r in roof[path].values())
        for r in roof[path].values():
            reported(r, "max_steps_per_s")


def test_bench_subleq_quick(tmp_path, capsys):
    assert main(["bench", "subleq", "--quick", "--out", str(tmp_path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    data = json.loads((tmp_path / "subleq_quick.json").read_text())
    assert printed == data
    assert data["quick"] is True and data["date"] and data["device_name"] and data["torch"]
    assert data["sizes"][0]["mem"] == 64 and data["sizes"][0]["nonzero_params"] > 0
    reported(data["sizes"][0], "compile_s")
    cpu = data["cpu"]
    check_device_shape(cpu)
    reported(cpu, "emulator_steps_per_s", "interpreter_steps_per_s")
    reported(cpu["batch_1"], "fast_over_emulator", "fast_over_interpreter")
    assert cpu["by_mem"]["mem_16"]["batch_1"]["exact"]
    assert "note" in data["cuda"] or "batch_1" in data["cuda"]
    trace = data["trace_mode"]["by_mem"]["64"]
    assert all(trace[k]["exact"] for k in ("batch_1", "batch_64", "batch_1024", "loop_fast_batch_1"))
    assert trace["batch_1"]["proven_heads"] == trace["batch_1"]["heads"] > 0
    assert trace["cli_batch_1"]["matches_reference"] and trace["cli_batch_1"]["steps"] == 3_000
    reported(trace["cli_batch_1"], "steps_per_s", "steps_per_wall_s")
    reported(trace["batch_1"], "instructions_per_s")
    md = (tmp_path / "README_quick.md").read_text()
    assert "## SUBLEQ" in md and "| batch | fast | dense |" in md and "H100 roofline" in md
    assert "| mem | bits | trace, batch 1 |" in md
    assert main(["bench", "subleq", "--quick", "--only", "cot", "--out", str(tmp_path)]) == 0
    again = json.loads((tmp_path / "subleq_quick.json").read_text())
    assert again["cpu"] == data["cpu"] and again["trace_mode"]["by_mem"]["64"]["batch_1"]["exact"]


def test_bench_tm_quick(tmp_path, capsys):
    assert main(["bench", "tm", "--quick", "--out", str(tmp_path)]) == 0
    assert "loop fast" in capsys.readouterr().out
    data = json.loads((tmp_path / "tm_quick.json").read_text())
    assert [r["states"] for r in data["sizes"]] == [2, 3]
    assert all(r["loop"]["nonzero_params"] > 0 and "compile_s" in r["cot"] for r in data["sizes"])
    check_device_shape(data["cpu"])
    for b in BATCHES:
        reported(data["cpu"][b]["fast"], "cot_tokens_per_s")
    reported(data, "simulator_steps_per_s", "interpreter_steps_per_s")
    assert "note" in data["cuda"] or "batch_1" in data["cuda"]
    assert "## Turing machines" in (tmp_path / "README_quick.md").read_text()


def test_bench_decode_quick(tmp_path, capsys):
    """Tokens/s per window and head path for the busy beavers' chains of thought: the shape, and every path exact."""
    assert main(["bench", "decode", "--quick", "--out", str(tmp_path)]) == 0
    assert "| index |" in capsys.readouterr().out
    data = json.loads((tmp_path / "decode_quick.json").read_text())
    native = importlib.util.find_spec("numba") is not None
    assert data["quick"] is True and data["reference"]["tokens_per_s"] == 30_000
    assert [r["name"] for r in data["runs"]] == ["BB(4) to halt", "BB(5) prefix"]
    bb4, bb5 = data["runs"]
    assert bb4["halted"] and bb4["tokens"] == 107 and not bb5["halted"] and bb5["tokens"] == 300
    for run in data["runs"]:
        assert [h["rule"] for h in run["heads"]] == ["position", "latest"]
        assert set(run["paths"]) == {"dense", "fast", "index", "native"}
        if not native:
            assert "numba" in run["paths"].pop("native")["note"]
        for p in run["paths"].values():
            assert p["exact"] is True and p["tokens_run"] == run["tokens"]
            reported(p, "tokens_per_s", "total_s")
            for w in p["windows"]:
                reported(w, "tokens_per_s")
    assert [[w["from"], w["to"]] for w in bb5["paths"]["index"]["windows"]] == [[20, 100], [100, 299]]
    words = data["words"]   # the word chain of thought: one proven `latest` head, every path exact
    assert words["tokens"] == 3_000 and [h["rule"] for h in words["heads"]] == ["latest"]
    assert words["positions"] == "formula" and "halt" not in data   # BB(5) to halt runs with --long only
    for path, p in words["paths"].items():
        if path == "native" and not native:
            continue
        assert p["exact"] is True and p["tokens_run"] == 3_000
        for w in p["windows"]:
            reported(w, "tokens_per_s")
    assert native == ("first_call_s" in data["native_jit"])
    assert "## Decoding" in (tmp_path / "README_quick.md").read_text()


def test_bench_programs_quick(tmp_path, capsys):
    """Every program with a reference: sizes, rates per batch on both paths, and every check passed."""
    from hardwire.references import REFERENCES
    assert main(["bench", "programs", "--quick", "--out", str(tmp_path)]) == 0
    assert "| program | unit | fast 1 | dense 1 |" in capsys.readouterr().out
    data = json.loads((tmp_path / "programs_quick.json").read_text())
    assert set(data["programs"]) == set(REFERENCES)
    for name, r in data["programs"].items():
        assert r["exact"] is True, name
        assert all(v for k, v in r["checked"].items() if k.endswith("reference") or k.endswith("interpreter")), name
        assert r["checked"]["inputs"] == 8 and r["length"] > 0 and r["nonzero_params"] > 0
        reported(r, "interpreter_per_s", "reference_per_s")
        for b in ("batch_1", "batch_8"):
            row = r["cpu"][b]
            assert row["fast_equals_dense"] is True
            reported(row, "fast_per_s", "dense_per_s", "fast_over_interpreter", "fast_over_reference")
        assert r["unit"] == ("tokens" if name in ("add_cot", "parity_cot") else "inputs")
        if r["unit"] == "inputs":   # the forward passes alone, without encoding and decoding
            reported(r["cpu"]["batch_8"], "fast_forward_per_s", "dense_forward_per_s")
        assert "note" in r["cuda"] or "batch_1" in r["cuda"]
    assert data["programs"]["caesar"]["roofline_h100"]["fast"]["batch_8"]["bound"] == "no work"   # 0 layers
    assert "## Programs" in (tmp_path / "README_quick.md").read_text()


def test_bench_programs_catches_a_wrong_reference(tmp_path, monkeypatch):
    """The checks can fail: a reference that adds one to every sum makes add_lsb's entry inexact."""
    from hardwire import references
    from hardwire.bench import programs as bench_programs
    wrong = references.Reference(lambda x: references.add_answer(x) + 1, references.add_lsb_read,
                                 references.add_lsb_input)
    monkeypatch.setitem(references.REFERENCES, "add_lsb", wrong)
    r = bench_programs.bench_program("add_lsb", quick=True, threads=1)
    assert r["checked"]["interpreter_equals_reference"] is False and r["checked"]["fast_equals_reference"] is False
    assert r["exact"] is False


def test_no_test_asserts_a_time_or_a_speed():
    """A guard for the rule above, over every test module: no assert compares a rate, a duration or a ratio
    of rates (keys ending _per_s or _s, or holding _over_) with < or >."""
    import re
    from pathlib import Path
    timing = re.compile(r"""\bassert\b.*(_per_s|_s["']\]|_over_\w+["']\]|perf_counter).*[<>]|"""
                        r"""\bassert\b.*[<>].*(_per_s|_s["']\]|_over_\w+["']\]|perf_counter)""")
    found = [f"{p.name}:{i}" for p in Path(__file__).parent.glob("*.py")
             for i, line in enumerate(p.read_text().splitlines(), 1) if timing.search(line)]
    assert found == []


def test_bench_certify_reports_every_program_it_is_given(tmp_path, capsys):
    """`hardwire bench certify` certifies each program as `hardwire certify FILE` does and records it; the times
    are only reported, never asserted."""
    from hardwire.bench.certify import main as bench_certify
    out = bench_certify(["reverse", "sort", "-o", str(tmp_path / "certify.json")])
    assert sorted(out["programs"]) == ["reverse", "sort"]
    for r in out["programs"].values():
        assert r["certified"] is True and r["header_mismatch"] is None and r["length"] == r["max_len"]
        assert "total_s" in r
    assert json.loads((tmp_path / "certify.json").read_text()) == out


def test_bench_tracr_without_tracr_says_so(tmp_path, capsys, monkeypatch):
    """Without the `[tracr]` extra: one line naming it, exit 2, nothing written."""
    import sys
    monkeypatch.setitem(sys.modules, "tracr", None)   # `import tracr` raises ImportError
    assert main(["bench", "tracr", "--quick", "--out", str(tmp_path)]) == 2
    assert "`hardwire bench tracr` needs Tracr: pip install 'hardwire[tracr]'" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_bench_tracr_quick(tmp_path, capsys):
    """Two programs at max_len 5: both systems' sizes, hardwire exact, the goal judged per row (no times asserted)."""
    pytest.importorskip("tracr", reason="`hardwire bench tracr` needs Tracr: pip install 'hardwire[tracr]'")
    assert main(["bench", "tracr", "--quick", "--only", "hist,shift_by", "--out", str(tmp_path), "--json"]) == 0
    data = json.loads((tmp_path / "tracr_quick.json").read_text())
    assert [(r["program"], r["max_len"]) for r in data["rows"]] == [("hist", 5), ("shift_by", 5)]
    for r in data["rows"]:
        for system in ("hardwire", "tracr"):
            for k in ("layers", "sublayers", "heads", "d_model", "d_mlp", "params", "nonzero_params", "wrong"):
                assert isinstance(r[system][k], int), (system, k)
            reported(r[system], "compile_s")
        assert r["hardwire"]["wrong"] == 0 and r["inputs"] == 8
        assert r["ratio"]["d_model"] == round(r["hardwire"]["d_model"] / r["tracr"]["d_model"], 3)
    hist = data["rows"][0]
    assert (hist["hardwire"]["d_model"], hist["tracr"]["d_model"]) == (8, 19)   # the count is one number
    assert data["goal_met"]["of"] == 2


def test_tracr_batched_outputs_are_its_apply():
    """The bench runs Tracr on one padded batch; that is what `apply` gives one input at a time."""
    pytest.importorskip("tracr", reason="`hardwire bench tracr` needs Tracr: pip install 'hardwire[tracr]'")
    from tracr.compiler import compiling

    from hardwire.bench.tracr import draw_inputs, programs, tracr_outputs
    for name in ("frac_prevs", "shift_by"):
        make, vocab, distinct = programs()[name]
        model = compiling.compile_rasp_to_model(make(6), vocab=vocab(6), max_seq_len=6, compiler_bos="BOS")
        inputs = draw_inputs(vocab(6), 6, 4, distinct, seed=1)
        assert tracr_outputs(model, inputs, 6) == [list(model.apply(["BOS"] + xs).decoded[1:]) for xs in inputs]
