"""`hardwire export`: the ONNX graph (onnxruntime) and the TransformerLens model (TransformerBridge.boot_native)
give the runtime's residual stream and decoded outputs on random inputs, for every program in programs/; what
the target cannot hold is refused in one line (exit 2). Needs the `export` extra; skipped without it."""
import functools
import json
import sys
from pathlib import Path

import pytest
import torch
from hardwire.compiler.artifact import from_json
from hardwire.compiler.check.elaborate import check_file, check_source
from hardwire.compiler.pipeline import compile_program
from hardwire.runtime.model import from_compiled

from hardwire.cli import export as export_cmd
from hardwire.cli.main import main
from hardwire.export import onnx as export_onnx
from hardwire.export import tl as export_tl
from hardwire.export import tl_tokens as export_tl_tokens
from hardwire.harness import run_batch, same_values, sample_input

PROGRAMS = Path(__file__).resolve().parent.parent / "programs"
NAMES = sorted(p.stem for p in PROGRAMS.glob("*.hw"))
SMALL = {"subleq": {"mem": 16, "bits": 8}, "parity_cc": {"n": 16}}  # the rest compile small at their defaults
TL_REFUSED = {"parity_cc": "LayerNorm over pairs"}
SAMPLES = 48


@functools.cache
def model(name: str, **params):
    prog = check_file(str(PROGRAMS / f"{name}.hw"), params or SMALL.get(name, {}))
    return from_compiled(compile_program(prog), "cpu")


def weights(name: str, tmp_path: Path, **params) -> str:
    path = tmp_path / f"{name}.safetensors"
    compile_program(check_file(str(PROGRAMS / f"{name}.hw"), params or SMALL.get(name, {}))).save(str(path))
    return str(path)


def one_line_error(capsys, args: list[str], needle: str) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and needle in err and "Traceback" not in err, err


@pytest.mark.parametrize("name", NAMES)
def test_onnx_matches_runtime(name, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    m = model(name)
    path = str(tmp_path / f"{name}.onnx")
    info = export_onnx.export(m, path)
    assert info["one_pass"] == ("loop" in m.config or "generate" in m.config)
    r = export_cmd.verify(m, "onnx", path, SAMPLES, seed=1)
    assert r["mismatches"] == 0 and r["max_abs_diff"] < 1e-4, r


@pytest.mark.parametrize("name", [n for n in NAMES if n not in TL_REFUSED])
def test_transformer_lens_matches_runtime(name, tmp_path):
    pytest.importorskip("transformer_lens")
    m = model(name)
    folder = str(tmp_path / name)
    export_tl.export(m, folder, forward_only=True)
    r = export_cmd.verify(m, "transformer-lens", folder, SAMPLES, seed=1)
    # a scalar count (length's output) sums up to max_len ramps, each off by a float32 rounding of a
    # pre-activation of size ~1/h (about 2,000 at max_len 32): ~1e-4 each, far inside the decode margin of 0.5
    assert r["mismatches"] == 0 and r["max_abs_diff"] < (2e-3 if name == "length" else 1e-4), r
    text_round_trip(m, folder)


def word(v) -> str:
    """A token as `hardwire run --input` takes it."""
    return "true" if v is True else "false" if v is False else str(v)


def text_round_trip(m, folder: str, samples: int = 12) -> None:
    """The export's tokenizer on text: to_tokens of a string (a batch of strings, padded) and run_with_cache give,
    through export_tl_tokens.decode, the runtime's outputs; tokens_to_values inverts to_tokens."""
    import random
    bridge = export_tl.load_bridge(folder)
    cfg = m.config
    rng = random.Random(3)
    vocab = [from_json(v) for v in cfg["vocab"]]
    bits = cfg["word_bits"] if cfg.get("word_vocab") else 0
    batch = [sample_input(rng, vocab, min(cfg["max_len"], 24), cfg.get("distinct", False), bits)
             for _ in range(samples)]
    if cfg.get("exact_len"):
        batch = [sample_input(rng, vocab, cfg["max_len"], cfg.get("distinct", False), bits, True)
                 for _ in range(samples)]
    texts = [" ".join(map(word, xs)) for xs in batch]
    tokens = bridge.to_tokens(texts)
    assert [export_tl_tokens.tokens_to_values(folder, row) for row in tokens] == batch
    assert bridge.to_str_tokens(texts[0]) == ["<bos>"] + texts[0].split()
    with torch.no_grad():
        _, cache = bridge.run_with_cache(texts)
    got = export_tl_tokens.decode(folder, cache, tokens)
    assert all(same_values(g, w) for g, w in zip(got, m.run(batch))), (texts, got)


def test_transformer_lens_hooks_see_every_layer(tmp_path):
    """The point of the TL export: its cache holds each layer's residual and attention pattern, as ours does."""
    pytest.importorskip("transformer_lens")
    m = model("dyck2")  # heads vary by layer (2, 0, 1, 0, 0): padded heads and empty layers add exactly 0
    export_tl.export(m, str(tmp_path / "tl"))
    bridge = export_tl.load_bridge(str(tmp_path / "tl"))
    ids, lengths = m.encode([list("(([])"), list("[]"), list("(((]]]")])
    mask = (torch.arange(ids.shape[1])[None, :] < lengths[:, None]).long()
    with torch.no_grad():
        _, residuals, patterns = m(ids, lengths, trace=True)
        logits, cache = bridge.run_with_cache(ids, attention_mask=mask)
    for i in range(m.config["n_layers"]):
        assert torch.equal(cache[f"blocks.{i}.hook_resid_post"], residuals[i + 1]), i
    assert torch.equal(cache["blocks.0.attn.hook_pattern"], patterns[0])
    assert torch.equal(logits, residuals[-1])


def test_cli_writes_files_and_verifies(tmp_path, capsys):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    src = weights("parity_cc", tmp_path)  # the pair LayerNorm: ONNX holds it
    out = tmp_path / "pcc.onnx"
    assert main(["export", src, "--to", "onnx", "-o", str(out), "--verify", "20", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["verify"]["mismatches"] == 0 and info["graph_outputs"] == ["residual", "decoded.parity"]
    side = json.loads((tmp_path / "pcc.vocab.json").read_text())
    assert side["token_ids"] == {"0": 1, "1": 2} and side["bos_id"] == 0
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto, full_check=True)
    assert {p.key for p in proto.metadata_props} == {"hardwire"}
    assert {n.op_type for n in proto.graph.node} >= {"ReduceMean", "Sqrt", "Where", "Softmax", "Relu", "MatMul"}


def test_cli_transformer_lens_folder(tmp_path, capsys):
    pytest.importorskip("transformer_lens")
    src = weights("reverse", tmp_path)
    out = tmp_path / "rev_tl"
    assert main(["export", src, "--to", "transformer-lens", "-o", str(out), "--verify", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["verify"] == {"samples": 32, "max_abs_diff": 0.0, "mismatches": 0}
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors", "tokenizer.json",
                                                     "tokenizer_config.json", "vocab.json"]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["normalization_type"] is None and cfg["act_fn"] == "relu" and cfg["attention_dir"] == "bidirectional"


@pytest.mark.parametrize("name, needle", [
    ("parity_cc", "LayerNorm over pairs of projected dims (layers.1.norm)"),
    ("subleq", "a loop"),
])
def test_transformer_lens_refuses_what_it_lacks(name, needle, tmp_path, capsys):
    pytest.importorskip("transformer_lens")
    out = tmp_path / "tl"
    one_line_error(capsys, ["export", weights(name, tmp_path), "--to", "transformer-lens", "-o", str(out)], needle)
    assert not out.exists()


def test_transformer_lens_round_trip_as_a_user_writes_it(tmp_path, capsys):
    """to_tokens("a b c"), run_with_cache, decode: the values `hardwire run` prints; a plain Hugging Face
    AutoTokenizer reads the same files; a word out of the vocabulary or an input too long is one clear line."""
    pytest.importorskip("transformer_lens")
    from transformers import AutoTokenizer
    src = weights("reverse", tmp_path)
    folder = str(tmp_path / "reverse_tl")
    assert main(["export", src, "--to", "transformer-lens", "-o", folder]) == 0
    capsys.readouterr()
    bridge = export_tl.load_bridge(folder)
    tokens = bridge.to_tokens("a b c")
    assert tokens.tolist() == [[0, 1, 2, 3]] and bridge.to_str_tokens("a b c") == ["<bos>", "a", "b", "c"]
    assert bridge.to_tokens("a b c", prepend_bos=False).tolist() == [[1, 2, 3]]
    assert bridge.to_string(tokens[0, 1:]) == "a b c"
    logits, cache = bridge.run_with_cache(tokens)
    assert main(["run", src, "--input", "a b c", "--json", "--device", "cpu"]) == 0
    want = {k: [from_json(v) for v in vs] for k, vs in json.loads(capsys.readouterr().out)["outputs"].items()}
    assert export_tl_tokens.decode(folder, cache, tokens) == [want] == [{"reversed": ["c", "b", "a"]}]
    assert export_tl_tokens.decode(folder, logits, tokens) == [want]  # logits = the residual here
    _, cache = bridge.run_with_cache(["a b c", "d"])
    assert export_tl_tokens.decode(folder, cache, bridge.to_tokens(["a b c", "d"])) == [want, {"reversed": ["d"]}]
    assert AutoTokenizer.from_pretrained(folder)("a b c")["input_ids"] == [0, 1, 2, 3]
    with pytest.raises(export_tl.HardwireError) as info:
        bridge.to_tokens("a z")
    assert str(info.value) == "token 'z' at position 1 is not in the vocabulary of reverse (a, b, c, d)"
    with pytest.raises(export_tl.HardwireError) as info:
        bridge.to_tokens(" ".join("a" * 17))
    assert str(info.value) == "input has 17 tokens but max_len is 16"


def test_transformer_lens_generate_is_the_runtime_generation(tmp_path):
    """A generating program exports without --forward-only: its logits are next-token logits (the generated
    output's one-hot dims), its stop tokens the eos ids, so bridge.generate(..., do_sample=False) generates what
    `hardwire run` does; the residual stays in the cache (unembed.hook_in) for decode."""
    pytest.importorskip("transformer_lens")
    parity = model("parity_cot", n=4)
    folder = str(tmp_path / "pc")
    export_tl.export(parity, folder)
    bridge = export_tl.load_bridge(folder)
    for prompt in (["1", "0", "1", "1", "="], ["0", "0", "0", "1", "="], ["1", "1", "1", "1", "="]):
        want = run_batch(parity, [[int(t) if t != "=" else t for t in prompt]])[0]["generated"]
        text = bridge.generate(" ".join(prompt), max_new_tokens=4, do_sample=False, stop_at_eos=False, verbose=False)
        assert text == " ".join(prompt + [str(v) for v in want])
        toks = bridge.generate(" ".join(prompt), max_new_tokens=4, do_sample=False, stop_at_eos=False,
                               return_type="tokens", verbose=False)
        assert export_tl_tokens.tokens_to_values(folder, toks[0])[5:] == want
        _, cache = bridge.run_with_cache(toks)
        assert export_tl_tokens.decode(folder, cache, toks)[0] == parity.run([export_tl_tokens.tokens_to_values(
            folder, toks[0])])[0]
    stopper = from_compiled(compile_program(check_source(
        'program stopper\nvocab {0, 1, "end"}\nmax_len 8\ncausal\ngenerate next stop {"end"}\n'
        'output next = map(i -> if i >= 3 then "end" else 1, indices)\n', "stopper.hw")), "cpu")
    export_tl.export(stopper, str(tmp_path / "stop"))
    assert json.loads((tmp_path / "stop" / "config.json").read_text())["eos_token_id"] == [3]
    bridge = export_tl.load_bridge(str(tmp_path / "stop"))
    assert bridge.generate("0", max_new_tokens=7, do_sample=False, verbose=False) == "0 1 1 1 end"
    assert run_batch(stopper, [[0]])[0]["generated"] == [1, 1, 1, "end"]


def test_transformer_lens_refuses_wide_words(tmp_path, capsys):
    pytest.importorskip("transformer_lens")
    src = weights("subleq", tmp_path, mem=8, bits=17)
    one_line_error(capsys, ["export", src, "--to", "transformer-lens", "-o", str(tmp_path / "tl"), "--forward-only"],
                   "17-bit words")


def test_missing_extra_is_one_line(tmp_path, capsys, monkeypatch):
    src = weights("reverse", tmp_path)
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    one_line_error(capsys, ["export", src, "--to", "onnx", "-o", str(tmp_path / "r.onnx")],
                   "pip install hardwire[export]")
    import importlib.metadata

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)
    monkeypatch.setattr(importlib.metadata, "version", missing)
    one_line_error(capsys, ["export", src, "--to", "transformer-lens", "-o", str(tmp_path / "tl")],
                   "pip install hardwire[export]")
    assert not (tmp_path / "r.onnx").exists() and not (tmp_path / "tl").exists()


def test_bad_output_paths(tmp_path, capsys):
    pytest.importorskip("onnx")
    src = weights("reverse", tmp_path)
    one_line_error(capsys, ["export", src, "--to", "onnx", "-o", str(tmp_path / "no" / "r.onnx")], "does not exist")
    one_line_error(capsys, ["export", src, "--to", "onnx", "-o", src], "would overwrite the input file")
    one_line_error(capsys, ["export", src, "--to", "nnef", "-o", "x"], "invalid choice")


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_both_targets_at_default_sizes(name, tmp_path):
    """Every program at its own default params (subleq: 256 words of 16 bits), 300 random inputs per target."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("transformer_lens")
    m = from_compiled(compile_program(check_file(str(PROGRAMS / f"{name}.hw"))), "cpu")
    export_onnx.export(m, str(tmp_path / "m.onnx"))
    r = export_cmd.verify(m, "onnx", str(tmp_path / "m.onnx"), 300, seed=2)
    assert r["mismatches"] == 0 and r["max_abs_diff"] < 1e-4, r
    if name in TL_REFUSED:
        assert TL_REFUSED[name] in export_tl.refusal(m, forward_only=True)
        return
    export_tl.export(m, str(tmp_path / "tl"), forward_only=True)
    r = export_cmd.verify(m, "transformer-lens", str(tmp_path / "tl"), 300, seed=2)
    assert r["mismatches"] == 0 and r["max_abs_diff"] < 1e-4, r
