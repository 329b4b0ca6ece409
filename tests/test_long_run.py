"""Long runs of `hardwire tm` and `hardwire subleq`: progress, checkpoints, resume, and the memory check.

A run stopped after k steps (by a crash, or by --max-steps) and resumed from its checkpoint must end exactly
where the uninterrupted run ends; a checkpoint of another run is refused (exit 2)."""
import json
from pathlib import Path

import pytest
from hardwire.runtime.loop import run_loop
from hardwire.runtime.loop_state import LongRun
from hypothesis import given, settings
from hypothesis import strategies as st

from hardwire import checkpoint
from hardwire.cli.main import main
from tests.machines import looped_tm

ROOT = Path(__file__).resolve().parents[1]
HELLO = ROOT / "tests" / "data" / "subleq" / "hello.sq"
BB4 = "1RB1LB_1LA0LC_1RZ1LD_1RD0RA"   # 107 steps
KEYS = ("steps", "halted", "ones", "tape", "head", "matches_reference")


@pytest.fixture(autouse=True)
def cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("HARDWIRE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def run_json(args, capsys) -> tuple[int, dict]:
    code = main(args + ["--device", "cpu", "--json"])
    out = capsys.readouterr().out
    return code, (json.loads(out) if out.strip() else {})


def crash_after(monkeypatch, writes: int) -> None:
    """Make the run die (as Ctrl-C would) right after its `writes`-th checkpoint."""
    real, count = checkpoint.save, [0]

    def save(path, ck):
        real(path, ck)
        count[0] += 1
        if count[0] == writes:
            raise KeyboardInterrupt
    monkeypatch.setattr(checkpoint, "save", save)


@pytest.mark.parametrize("extra", [["--mode", "loop"], ["--mode", "loop", "--dense"], ["--mode", "cot"]],
                         ids=["loop-fast", "loop-dense", "cot"])
def test_tm_resumed_after_a_crash_ends_like_an_uninterrupted_run(extra, tmp_path, capsys, monkeypatch):
    ck = tmp_path / "bb4.ckpt"
    code, want = run_json(["tm", BB4, *extra], capsys)
    assert code == 0 and want["matches_reference"] and want["steps"] == 107
    with monkeypatch.context() as m:
        crash_after(m, 4)
        assert main(["tm", BB4, *extra, "--device", "cpu", "--checkpoint", str(ck), "--checkpoint-every", "0"]) \
            == 130
    capsys.readouterr()
    code, got = run_json(["tm", BB4, *extra, "--resume", str(ck), "--checkpoint", str(ck)], capsys)
    assert code == 0 and 0 < got["resumed_at"] < 107
    assert {k: got[k] for k in KEYS} == {k: want[k] for k in KEYS}
    if "cot" in extra:
        assert got["tokens"] == want["tokens"]


def test_subleq_stopped_by_the_step_limit_resumes_to_the_same_end(tmp_path, capsys):
    ck = tmp_path / "hello.ckpt"
    code, want = run_json(["subleq", str(HELLO)], capsys)
    assert code == 0 and want["steps"] == 71
    code, part = run_json(["subleq", str(HELLO), "--max-steps", "30", "--checkpoint", str(ck)], capsys)
    assert code == 3 and part["steps"] == 30 and part["checkpoints"] == 1 and part["text"] == "Hello,"
    code, got = run_json(["subleq", str(HELLO), "--dense", "--resume", str(ck)], capsys)   # the other path
    assert code == 0 and got["resumed_at"] == 30
    assert {k: got[k] for k in ("steps", "halted", "output", "memory", "matches_reference")} == \
        {k: want[k] for k in ("steps", "halted", "output", "memory", "matches_reference")}


@given(st.integers(0, 60), st.booleans())
@settings(max_examples=12)
def test_a_loop_stopped_at_any_step_resumes_exactly(k, fast):
    """run_loop to step k with a checkpoint, then resumed to the end: the same registers, steps and halting."""
    model, tokens, ref, _ = looped_tm("1RB1LB_1LA0LC_1RZ1LD_1RD0RA", [], 200)
    want, = run_loop(model, [tokens], max_steps=200, fast=fast)
    saved = []
    part, = run_loop(model, [tokens], max_steps=k, fast=fast, long=LongRun(save=saved.append, every_s=1e9))
    assert part.steps == k and saved and saved[-1].steps == k   # the limit's own checkpoint
    got, = run_loop(model, [tokens], max_steps=200, fast=not fast, long=LongRun(resume=saved[-1]))
    assert (got.steps, got.halted, got.outputs) == (want.steps, want.halted, want.outputs) == \
        (ref.steps, True, want.outputs)


def test_a_checkpoint_of_another_run_is_refused(tmp_path, capsys):
    ck = tmp_path / "hello.ckpt"
    assert run_json(["subleq", str(HELLO), "--max-steps", "10", "--checkpoint", str(ck)], capsys)[0] == 3
    assert main(["subleq", str(HELLO), "--mem", "128", "--resume", str(ck)]) == 2
    err = capsys.readouterr().err
    assert "this checkpoint was made for subleq" in err and "256 words" in err and "128 words" in err
    assert main(["tm", BB4, "--resume", str(ck)]) == 2                   # another machine altogether
    assert "not for this run, tm 1RB1LB_1LA0LC_1RZ1LD_1RD0RA --mode loop" in capsys.readouterr().err
    other = tmp_path / "other.sq"
    other.write_text(HELLO.read_text().replace("72", "73", 1))
    assert main(["subleq", str(other), "--resume", str(ck)]) == 2         # the same machine, another image
    assert "another input, dtype or compiler" not in capsys.readouterr().err   # (its name differs too)
    assert main(["subleq", str(HELLO), "--max-steps", "5", "--resume", str(ck)]) == 2
    assert "the checkpoint is at step 10, past --max-steps 5" in capsys.readouterr().err
    junk = tmp_path / "junk.ckpt"
    junk.write_text("not a checkpoint")
    assert main(["subleq", str(HELLO), "--resume", str(junk)]) == 2
    assert "not a hardwire checkpoint" in capsys.readouterr().err
    assert main(["subleq", str(HELLO), "--resume", str(tmp_path / "missing.ckpt")]) == 2
    assert "no such checkpoint file" in capsys.readouterr().err
    assert main(["subleq", str(HELLO), "--checkpoint", str(tmp_path / "no" / "dir.ckpt")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_checkpoint_is_written_whole(tmp_path, capsys):
    """The file is replaced by a rename: no temporary file is left beside it, and it loads after every write."""
    ck = tmp_path / "c.ckpt"
    code, info = run_json(["tm", BB4, "--mode", "cot", "--checkpoint", str(ck), "--checkpoint-every", "0"],
                          capsys)
    assert code == 0 and info["checkpoints"] == 107   # the native index decoder's: one after each token, the last too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.ckpt"]


def test_a_finished_native_checkpoint_resumes_to_the_same_run(tmp_path, capsys):
    """The last checkpoint of a chain of thought is taken after its stop token: resuming it decodes nothing more."""
    pytest.importorskip("numba", reason="the native index kernel writes this checkpoint (the `native` extra)")
    ck = tmp_path / "c.ckpt"
    code, want = run_json(["tm", BB4, "--mode", "cot", "--checkpoint", str(ck)], capsys)
    assert code == 0 and want["decoder"] == "native index" and want["checkpoints"] == 1
    code, got = run_json(["tm", BB4, "--mode", "cot", "--resume", str(ck)], capsys)
    assert code == 0 and got["resumed_at"] == 107 and got["every_token_matches"]
    assert {k: got[k] for k in KEYS} == {k: want[k] for k in KEYS} and got["tokens"] == 107
    assert main(["tm", BB4, "--mode", "cot", "--dense", "--resume", str(ck), "--device", "cpu"]) == 2
    assert capsys.readouterr().err == (f"hardwire: error: --resume {ck}: the checkpoint is the native index "
                                       "decoder's, which cannot decode this run (--dense)\n")


def test_progress_line_has_steps_and_the_known_total(capsys):
    assert main(["tm", BB4, "--device", "cpu", "--progress"]) == 0
    err = capsys.readouterr().err
    assert "steps" in err and "107/107" in err and "step/s" in err
    assert main(["tm", BB4, "--device", "cpu"]) == 0                      # not a terminal: no line
    assert capsys.readouterr().err == ""
    assert main(["tm", BB4, "--mode", "cot", "--device", "cpu", "--progress"]) == 0
    err = capsys.readouterr().err
    assert "tokens" in err and "107/107" in err and "token/s" in err


def test_a_run_that_cannot_fit_is_refused_with_the_estimate(capsys, monkeypatch):
    monkeypatch.setenv("HARDWIRE_MEMORY_BUDGET", "1000")
    assert main(["tm", BB4, "--mode", "cot", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "the chain of thought turing_cot_words needs about" in err and "lower --max-steps" in err
    assert main(["subleq", str(HELLO), "--device", "cpu"]) == 2
    assert "the SUBLEQ computer subleq needs about" in capsys.readouterr().err
