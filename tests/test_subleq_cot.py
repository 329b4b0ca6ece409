"""The trace-mode SUBLEQ (`hardwire subleq --mode cot`): its generated tokens equal the emulator's trace, token for
token, on random images and the example programs; every head is proven; its sizes do not depend on the memory."""
import json
from functools import lru_cache
from pathlib import Path

import pytest
import torch
from hardwire.compiler.check.elaborate import check_file
from hardwire.compiler.interpret import generate as interpret_generate
from hardwire.compiler.pipeline import compile_program
from hardwire.runtime.generate import generate
from hardwire.runtime.index_attention import Refusal, derive
from hardwire.runtime.index_decode import proven
from hardwire.runtime.model import from_compiled
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardwire.cache import cached_source
from hardwire.cli.main import main
from hardwire.machines.subleq import asm as subleq_asm
from hardwire.machines.subleq import cot
from hardwire.machines.subleq import emulator as subleq_ref

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "programs" / "subleq"
CORPUS = ROOT.parent / "shared" / "corpus" / "subleq"
MAX_LEN = 160
SHAPES = [(8, 6), (16, 8), (40, 12)]   # (mem, bits)


@pytest.fixture(autouse=True)
def cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("HARDWIRE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@lru_cache(maxsize=None)
def built(mem: int, bits: int, max_len: int = MAX_LEN):
    """(checked program, float64 model) of the trace mode; the cache folder is a fixed temporary one."""
    prog = check_file(str(cached_source("subleq_cot", cot.cot_program(mem, bits, max_len))), {})
    return prog, from_compiled(compile_program(prog, positions="formula"), "cpu", torch.float64)


def images(mem: int, bits: int):
    """Random images: random words, with addresses in and around memory and -1 (outputs) common."""
    lo, hi = subleq_ref.word_range(bits)
    word = st.one_of(st.integers(lo, hi), st.integers(-2, mem + 2), st.sampled_from([0, -1, 3, 6]))
    return st.lists(word, min_size=1, max_size=mem)


def steps_that_fit(image: list[int], bits: int, max_len: int = MAX_LEN) -> int:
    return (max_len - len(cot.prompt(image, bits))) // 3


def test_a_plain_trace():
    """0 0 -1 at mem 8, 8-bit words: m[0] -= m[0] is 0, so it jumps to -1 and halts after one step."""
    enc = cot.Tokens(8)
    assert cot.prompt([0, 0, -1], 8) == [enc.addr(2), enc.val(-1), enc.pc(0)] == [258, -1, -256]
    assert cot.trace_tokens([0, 0, -1], 8, 8, 10) == [enc.addr(0), enc.val(0), enc.stop] == [256, 0, 384]
    # an output (B = -1) of m[3] = 7, then 0 0 -1 at pc 3... which halts on m[3] -= m[3]
    assert cot.trace_tokens([3, -1, 0, 7, 7, -1], 8, 8, 10) == [enc.addr(-1), enc.val(7), enc.pc(3),
                                                                  enc.addr(7), enc.val(0), enc.stop]
    _, model = built(8, 8)
    pr = cot.prompt([0, 0, -1], 8)
    assert generate(model, [pr], attention="index")[0] == [256, 0, 384]


def test_replay_reads_the_run_off_the_tokens():
    image = [3, -1, 0, 7, 7, -1]
    run = cot.replay(image, 8, 8, cot.trace_tokens(image, 8, 8, 10))
    want = subleq_ref.run(image, mem=8, bits=8)
    assert (run.steps, run.halted, run.output, run.mem) == (want.steps, want.halted, want.output, want.mem) \
        == (2, True, [7], [3, -1, 0, 7, 7, -1, 0, 0])


@pytest.mark.parametrize("mem,bits", SHAPES)
def test_every_head_is_proven(mem, bits):
    _, model = built(mem, bits)
    rules = derive(model)
    assert rules and not [r for r in rules if isinstance(r, Refusal)]
    assert {r.kind for r in proven(model).values()} == {"latest"}
    assert len(proven(model)) == sum(layer["heads"] for layer in model.config["layers"]) == 10


@pytest.mark.parametrize("mem,bits", SHAPES)
@given(data=st.data())
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_generated_tokens_are_the_emulators_trace(mem, bits, data):
    image = data.draw(images(mem, bits))
    _, model = built(mem, bits)
    steps = steps_that_fit(image, bits)
    want = cot.trace_tokens(image, mem, bits, steps)
    pr = cot.prompt(image, bits)
    got = generate(model, [pr], max_len=len(pr) + len(want), attention="index")[0]
    assert got == want
    run, ref = cot.replay(image, mem, bits, got), subleq_ref.run(image, mem=mem, bits=bits, max_steps=steps)
    assert (run.steps, run.halted, run.output, run.mem) == (ref.steps, ref.halted, ref.output, ref.mem)


@given(image=images(16, 8))
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_index_decoder_the_dense_pass_and_the_interpreter_agree(image):
    prog, model = built(16, 8)
    pr = cot.prompt(image, 8)
    n = len(pr) + 3 * min(steps_that_fit(image, 8), 12)
    index = generate(model, [pr], max_len=n, attention="index")[0]
    assert index == generate(model, [pr], max_len=n, fast=False)[0] == interpret_generate(prog, pr, n)


def test_a_batch_of_images_decodes_row_by_row():
    """Rows of different lengths, halting or not (0 0 0 loops forever), each on its own trace."""
    images_ = [[0, 0, -1], [3, -1, 0, 7, 7, -1], [6, 7, 3, 0, 0, -1, 2, 5], [9, -1, 3, 0, 0, 0], [0, 0, 0]]
    _, model = built(16, 8)
    prompts = [cot.prompt(im, 8) for im in images_]
    got = generate(model, prompts, max_len=MAX_LEN, attention="index")
    for im, p, g in zip(images_, prompts, got):
        want = cot.trace_tokens(im, 16, 8, steps_that_fit(im, 8))
        halted = want[-1] == cot.Tokens(8).stop
        assert g == want if halted else (g[:len(want)] == want and len(g) == MAX_LEN - len(p))
    assert got[-1][-1] != cot.Tokens(8).stop


def test_sizes_do_not_depend_on_the_memory():
    """d_model, layers, heads and every parameter count are the same at 256 and 65,536 words (17-bit words, which
    address 65,536), at the same number of positions: only the position table grows, with max_len."""
    def sizes(mem: int) -> dict:
        c = compile_program(check_file(str(cached_source("subleq_cot", cot.cot_program(mem, 17, 1024))), {}))
        cfg = c.config
        return {"d_model": cfg["d_model"], "layers": cfg["n_layers"],
                "heads": [layer["heads"] for layer in cfg["layers"]],
                "d_mlp": [layer["d_mlp"] for layer in cfg["layers"]],
                "params": {k: tuple(v.shape) for k, v in c.tensors.items()}}
    assert sizes(256) == sizes(65_536)


@pytest.mark.parametrize("name", sorted(json.loads((EXAMPLES / "expected.json").read_text())))
def test_the_example_programs(name, capsys):
    expected = json.loads((EXAMPLES / "expected.json").read_text())[name]
    assert main(["subleq", str(EXAMPLES / name), "--asm", "--mode", "cot", "--device", "cpu", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["mode"] == "cot" and info["matches_reference"] and info["halted"]
    assert info["output"] == expected["output"] and info["text"] == expected["text"]
    assert info["unproven_heads"] == [] and info["proven_heads"] == info["heads"]
    image = subleq_asm.assemble_file(str(EXAMPLES / name), 16)
    assert info["steps"] == subleq_ref.run(image, mem=256, bits=16).steps and len(info["memory"]) == 256


@pytest.mark.skipif(not CORPUS.is_dir(), reason="no ../shared/corpus here")
@pytest.mark.parametrize("image", sorted(p.name for p in CORPUS.glob("*.sq")) if CORPUS.is_dir() else [])
def test_the_corpus_images(image, capsys):
    assert main(["subleq", str(CORPUS / image), "--mode", "cot", "--device", "cpu", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    ref = subleq_ref.run(subleq_ref.load_image(str(CORPUS / image), 256, 16), mem=256, bits=16)
    assert info["matches_reference"] and (info["steps"], info["output"]) == (ref.steps, ref.output)


def high_image(mem: int) -> list[int]:
    """A program that writes and reads the top of memory: out m[mem-1]; m[mem-2] -= m[mem-1]; out m[mem-2];
    then m[mem-1] -= m[mem-1] (0, so it jumps to -1: halt). mem-1 holds 5."""
    image = [0] * mem
    image[:12] = [mem - 1, -1, 3, mem - 1, mem - 2, 6, mem - 2, -1, 9, mem - 1, mem - 1, -1]
    image[mem - 1] = 5
    return image


def test_a_65536_word_memory(capsys, tmp_path):
    img = tmp_path / "high.sq"
    img.write_text(" ".join(map(str, high_image(65_536))))
    assert main(["subleq", str(img), "--mode", "cot", "--mem", "65536", "--bits", "17", "--device", "cpu",
                 "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["matches_reference"] and info["halted"] and info["output"] == [5, -5]
    assert info["memory"][65_534:] == [-5, 0] and info["unproven_heads"] == []
    assert info["prompt_tokens"] == 2 * 13 + 1     # the image's 13 non-zero words (12 + the 5 at the top), PC(0)


def test_step_limit_and_json_keys(tmp_path, capsys):
    img = tmp_path / "loop.sq"
    img.write_text("0 0 0  # jumps to itself forever\n")
    args = ["subleq", str(img), "--mem", "16", "--bits", "8", "--max-steps", "20", "--device", "cpu", "--json"]
    assert main([*args, "--mode", "cot"]) == 3
    info = json.loads(capsys.readouterr().out)
    assert info["steps"] == 20 and info["halted"] is False and info["matches_reference"]
    assert main(args) == 3
    loop = json.loads(capsys.readouterr().out)
    assert loop["mode"] == "loop" and set(loop) <= set(info)   # the loop mode's keys, and more
    assert {k: info[k] for k in ("steps", "halted", "output", "memory")} == \
        {k: loop[k] for k in ("steps", "halted", "output", "memory")}


@pytest.mark.parametrize("args,needle", [
    (["--mem", "70000"], "raise --bits or lower --mem"),
    (["--mem", "0"], "at least 1 word"),
    (["--bits", "50"], "2 to 47-bit words"),
    (["--checkpoint", "x.ckpt"], "--checkpoint is for --mode loop"),
    (["--mem", "2097152", "--bits", "24"], "at most 1048575 words"),
])
def test_bad_options_are_one_line(args, needle, capsys):
    assert main(["subleq", str(EXAMPLES / "hello.sqa"), "--asm", "--mode", "cot", *args, "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and needle in err and "Traceback" not in err, err


def test_a_run_too_large_for_memory_is_refused_before_it_starts(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("HARDWIRE_MEMORY_BUDGET", str(50 << 20))
    img = tmp_path / "loop.sq"
    img.write_text("0 0 0\n")
    assert main(["subleq", str(img), "--mode", "cot", "--max-steps", "100000", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert "GiB" in err and "lower --max-steps" in err and err.count("\n") == 0
