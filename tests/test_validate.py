"""Weight files are validated when loaded (compiler/validate.py), and each file is named for what it is.

Every tampered header or tensor below was once accepted silently (issue 17): each is now refused, at `run`,
`export` and `hardwire.load`, with one line that names the part that failed, exit 2, no traceback and no file
written. A hypothesis property mutates the header of valid files at random: each mutant is refused with a
HardwireError, or loads and behaves exactly as the original (save for the fields only the certifier, which
knows the program, can judge: SEMANTIC). Every compiler output passes the validator: every program in
programs/ (also with other params) and a fixed set of random programs from tests/fuzz_programs.py.
"""
from __future__ import annotations

import copy
import functools
import json
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hardwire.compiler.artifact import FORMAT
from hardwire.compiler.check.elaborate import check_file, check_source
from hardwire.compiler.core.errors import HardwireError
from hardwire.compiler.pipeline import compile_program
from hardwire.compiler.validate import MAX_WEIGHT, check_header, fmt, sniff
from hardwire.runtime.model import load
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

import hardwire
from hardwire.harness import run_batch
from tests.fuzz_programs import RandomChooser, build_program, same
from tests.test_errors import refused

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = ROOT / "programs"
ERR = "hardwire: error: "
CORRUPT = "bad.safetensors: corrupt weight file: "


@pytest.fixture(autouse=True)
def workdir(tmp_path: Path, monkeypatch) -> Path:
    """Each test runs in its own empty folder, so that messages name relative paths."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """Weight files compiled once: plain (code, scalar and word outputs), generating (one-hot outputs) and looped."""
    folder = tmp_path_factory.mktemp("models")
    out = {}
    for name, params in (("reverse", None), ("frac_prevs", None), ("add_lsb", None), ("parity_cot", None),
                         ("add_cot", None), ("subleq", {"mem": 8, "bits": 6})):
        out[name] = folder / f"{name}.safetensors"
        compile_program(check_file(str(PROGRAMS / f"{name}.hw"), params)).save(str(out[name]))
    return out


def header(path: Path) -> dict:
    with safe_open(str(path), "np") as f:
        return json.loads(f.metadata()["hardwire"])


def write(dst: str, tensors: dict, meta) -> None:
    save_file(tensors, dst, metadata={"hardwire": meta if isinstance(meta, str) else json.dumps(meta)})


def tampered(src: Path, dst: str, tensors=None, meta=None) -> None:
    """A copy of src with its tensors and/or its header changed by the given functions."""
    t, m = load_file(str(src)), header(src)
    if tensors is not None:
        tensors(t)
    if meta is not None:
        meta(m)
    write(dst, t, m)


def cfg(key: str, value):
    return lambda m: m["config"].__setitem__(key, value)


def out(key: str, value, name: str = "reversed"):
    return lambda m: m["outputs"][name].__setitem__(key, value)


def retyped(dtype):
    return lambda t: t.update({k: v.astype(dtype) for k, v in t.items()})


def permute_values(m: dict) -> None:
    """add_cot's `next`: a one-hot output (the generated token), whose labels name its values. (A code's labels do
    not: a permuted code is caught by `hardwire certify --program`, which compares the header with the compiler's.)"""
    values = m["outputs"]["next"]["values"]
    values[1], values[2] = values[2], values[1]


# id: (model, tensors change, header change, the message after "corrupt weight file: ")
TAMPER = {
    "bos_token_id-999": ("reverse", None, cfg("bos_token_id", 999),
                         "config.bos_token_id is 999, but a hardwire model reads BOS as token 0"),
    "bos_token_id-x": ("reverse", None, cfg("bos_token_id", "x"),
                       'config.bos_token_id is "x", but a hardwire model reads BOS as token 0'),
    "integer-labels": ("reverse", None, lambda m: m.__setitem__("labels", list(range(len(m["labels"])))),
                       "residual label 0 is 0, not a string"),
    "outputs-emptied": ("reverse", None, lambda m: m.__setitem__("outputs", {}),
                        "the header lists no outputs (every program has at least one `output` line)"),
    "onehot-output-as-word": ("reverse", None, out("encoding", "word"),
                              "output 'reversed' is declared a word, but it lists 5 values, as a one-hot or scalar "
                              "output does"),
    "onehot-output-as-word-values-dropped": (
        "reverse", None, lambda m: m["outputs"]["reversed"].update(encoding="word", values=[]),
        "output 'reversed' is a word, but its bit 0 is dim 39, labelled 'reversed', not a word's bit "
        "('NAME.b0')"),
    "code-values-permuted": ("reverse", None, lambda m: m["outputs"]["reversed"]["values"].reverse(),
                             "output 'reversed' lists values that are not those of its value set 'reversed' (a code "
                             "holds the index of its value in that list)"),
    "one-hot-values-permuted": ("add_cot", None, permute_values,
                                "output 'next' decodes dim 93 as 2, but that dim is labelled 'next=1'"),
    "generate-added-to-a-plain-model": ("reverse", None, cfg("generate", {"output": "reversed", "stop": []}),
                                        "config.generate on a model that is not causal (a generating program is "
                                        "`causal`)"),
    "float16-tensors": ("reverse", retyped(np.float16), None,
                        "tensor 'embed.positions' is stored as float16; hardwire weight files hold float32"),
    "float64-tensors": ("reverse", retyped(np.float64), None,
                        "tensor 'embed.positions' is stored as float64; hardwire weight files hold float32"),
    "int8-tensors": ("reverse", retyped(np.int8), None,
                     "tensor 'embed.positions' is stored as int8; hardwire weight files hold float32"),
    "bool-tensors": ("reverse", retyped(bool), None,
                     "tensor 'embed.positions' is stored as bool; hardwire weight files hold float32"),
    "a-weight-of-3e38": ("reverse", lambda t: t["layers.2.attn.W_O"].__setitem__((0, 0, 39), 3e38), None,
                         "tensor 'layers.2.attn.W_O' holds a weight of 3e+38, beyond the 1.84e+19 bound on any "
                         "compiled weight"),
    "an-infinite-weight": ("reverse", lambda t: t["embed.tokens"].__setitem__((1, 1), -np.inf), None,
                           "tensor 'embed.tokens' holds NaN or infinite values"),
    "groups-emptied": ("reverse", None, cfg("groups", []),
                       "config.groups leaves 38 residual dims in no value set (first: dim 2, 'indices=0')"),
    "group-claims-a-dim-twice": ("reverse", None, lambda m: m["config"]["groups"][1]["dims"].append(2),
                                 "config.groups entries 'indices' and 'tokens' both claim dim 2"),
    "causal-not-a-bool": ("reverse", None, cfg("causal", "yes"), "config.causal is missing or invalid (yes)"),
    "exact_len-not-a-bool": ("reverse", None, cfg("exact_len", 1), "config.exact_len is 1, not true or false"),
    "max_len-past-the-limit": ("reverse", None, cfg("max_len", 10 ** 12),
                               "config.max_len is 1000000000000, over the compiler's limit of 1,073,741,824"),
    "word_bits-negative": ("reverse", None, cfg("word_bits", -3),
                           "config.word_bits is -3, not a word width of 0 to 63"),
    "params-not-integers": ("reverse", None, cfg("params", {"k": "3"}),
                            'config.params is {"k": "3"}, not a map of param names to integers'),
    "program-name-missing": ("reverse", None, cfg("program", None), "config.program is null, not a program name"),
    "scales-emptied": ("reverse", None, lambda m: m["config"]["layers"][0].__setitem__("scales", []),
                            "config.layers[0].scales must list one positive scale per head (1)"),
    "output-reads-not_bos": ("reverse", None, out("dims", [1]),
                             "output 'reversed' reads dims [1]: each once, and none of bos and not_bos (dims 0 and 1)"),
    "output-over-another-value-set": ("add_cot", None, out("dims", list(range(47, 57)), "next"),
                                      "output 'next' decodes dim 47 as 0, but that dim is labelled "
                                      "'_aggregate=none'"),
    "scalar-grid-off-its-values": ("frac_prevs", None, lambda m: m["outputs"]["frac"]["grid"].__setitem__(1, 0.5),
                                   "output 'frac' has grid point 0.5 for its value 1/32; the grid must be its "
                                   "values as numbers"),
    "scalar-output-as-onehot": ("frac_prevs", None, out("encoding", "onehot", "frac"),
                                "output 'frac' has 1 dims for 325 one-hot values"),
    "word-output-over-fewer-bits": ("add_lsb", None, lambda m: m["outputs"]["sum"]["dims"].pop(),
                                    "output 'sum' is word over dims [73, 74, 75, ... (6 in all)], but config.groups "
                                    "has no value set over exactly those dims"),
    "generate-stops-at-a-non-token": ("parity_cot", None,
                                      lambda m: m["config"]["generate"].__setitem__("stop", [7]),
                                      "config.generate stops at 7, not a token of config.vocab"),
    "generate-names-a-non-token-output": ("add_lsb", None, cfg("generate", {"output": "carry_out", "stop": []}),
                                          "config.generate names output 'carry_out', which can be False, not a "
                                          "token of config.vocab"),
    "loop-flag-off-its-register": ("subleq", None,
                                   lambda m: m["config"]["loop"]["flags"].__setitem__("halted", [2, 3]),
                                   "loop flag 'halted' is not one of halted, emit_on, emit_val over its register "
                                   "'__halted'"),
    "loop-and-generate": ("subleq", None, cfg("generate", {"output": "memory", "stop": []}),
                          "config has both a generate and a loop block; a program has at most one"),
    "loop-of-no-layers": ("subleq", None, lambda m: m["config"]["loop"].__setitem__("body_layers", 0),
                          "config.loop has a body of 0 layers"),
    "output-dims-emptied": ("reverse", None, out("dims", []),
                            "output 'reversed' reads no dims, so it is a constant, but it lists 5 values, not one"),
    "generate-null": ("parity_cot", None, cfg("generate", None),
                      "config.generate is null; a model without a generate block has no generate key"),
}


@pytest.mark.parametrize("case", list(TAMPER), ids=list(TAMPER))
def test_tampered_file_is_refused_by_run_and_the_api(capsys, models, case):
    """Each tamper through `run` (one line, exit 2, nothing written) and through hardwire.load (HardwireError,
    the same message)."""
    model, tensors, meta, message = TAMPER[case]
    tampered(models[model], "bad.safetensors", tensors, meta)
    line = refused(capsys, ["run", "bad.safetensors", "--input", "1", "--device", "cpu"])
    assert line == ERR + CORRUPT + message
    with pytest.raises(HardwireError) as e:
        hardwire.load("bad.safetensors", device="cpu")
    assert str(e.value) == CORRUPT + message


@pytest.mark.parametrize("target,out", [("onnx", "out.onnx"), ("transformer-lens", "tl")])
@pytest.mark.parametrize("case", ["bos_token_id-999", "onehot-output-as-word", "float64-tensors",
                                  "a-weight-of-3e38", "groups-emptied"])
def test_tampered_file_is_refused_by_export(capsys, models, case, target, out):
    pytest.importorskip("onnx" if target == "onnx" else "transformer_lens")
    model, tensors, meta, message = TAMPER[case]
    tampered(models[model], "bad.safetensors", tensors, meta)
    assert refused(capsys, ["export", "bad.safetensors", "--to", target, "-o", out]) == ERR + CORRUPT + message


def test_certify_refuses_a_tampered_file(capsys, models):
    tampered(models["reverse"], "bad.safetensors", meta=cfg("groups", []))
    assert refused(capsys, ["certify", "bad.safetensors"]) == ERR + CORRUPT + TAMPER["groups-emptied"][3]


@pytest.mark.parametrize("text", ["[" * 100_000, '{"config": ' * 100_000], ids=["lists", "objects"])
def test_deeply_nested_header_is_one_line(capsys, models, text):
    """A header of 100,000 nested `[` once ended in a RecursionError traceback."""
    write("bad.safetensors", load_file(str(models["reverse"])), text)
    assert refused(capsys, ["run", "bad.safetensors", "--input", "a", "--device", "cpu"]) == \
        ERR + "bad.safetensors: corrupt or foreign weight file (its header nests too deeply to be a hardwire header)"


def test_a_header_key_the_compiler_does_not_write_is_ignored(models):
    """Unknown keys change nothing that runs: the file loads and answers as before."""
    def extra(m: dict) -> None:
        m["comment"] = "hello"
        m["config"]["note"] = [1, 2]
    tampered(models["reverse"], "extra.safetensors", meta=extra)
    assert load("extra.safetensors", "cpu").run([["a", "b", "c"]]) == [{"reversed": ["c", "b", "a"]}]


# ---- every compiler output passes ------------------------------------------------------------------------
def _round_trip(compiled) -> None:
    compiled.save("m.safetensors")
    load("m.safetensors", "cpu")


@pytest.mark.parametrize("name,params", [(p.stem, None) for p in sorted(PROGRAMS.glob("*.hw"))] + [
    ("subleq", {"mem": 16, "bits": 12}), ("subleq", {"mem": 4, "bits": 4}), ("parity_cc", {"n": 7}),
    ("add_lsb", {"n": 3, "bits": 6}), ("parity_cot", {"n": 3, "bits": 4})])
def test_every_program_passes_the_validator(name, params):
    """Its file loads, and its largest weight is far (2^40 times) below the bound on a weight's magnitude."""
    compiled = compile_program(check_file(str(PROGRAMS / f"{name}.hw"), params))
    _round_trip(compiled)
    assert max(float(np.abs(t).max()) for t in compiled.tensors.values()) < MAX_WEIGHT * 2.0 ** -40


def test_random_programs_pass_the_validator():
    """A fixed set of random well-typed programs (tests/fuzz_programs.py): every file the compiler writes loads."""
    loaded = 0
    for seed in range(60):
        try:
            compiled = compile_program(check_source(build_program(RandomChooser(seed)).source, "<fuzz>"))
        except HardwireError:
            continue
        _round_trip(compiled)
        loaded += 1
    assert loaded >= 50


# ---- random header mutations ----------------------------------------------------------------------------
# Fields whose change the structure cannot tell from the compiler's own output: a mutant there may load and
# behave differently, and only `hardwire certify` (which has the program) can judge it. Still, it must either
# load or be refused with a HardwireError, never crash.
SEMANTIC = (r"config\.causal", r"config\.exact_len", r"config\.vocab(\..*)?", r"config\.layers\.\d+\.norm_eps.*",
            r"config\.generate(\.stop.*|\.output)?", r"config\.loop", r"config\.loop\.body_layers",
            r"outputs\.\w+\.value", r"outputs\.\w+")   # a whole block or output dropped: fewer declared
INPUTS = {"reverse": [["a"], ["a", "b", "c"], ["d", "c", "b", "a", "a"]],
          "frac_prevs": [["x"], ["x", "y", "x"], ["y", "y", "x", "x", "y"]],
          "add_lsb": [[0], [1, 2, "+", 3], [9, 9, 9, "+", 9, 9, 9]],
          "parity_cot": [[0], [1, 0, 1, "="], [1, 1, "="]],
          "subleq": [[0, 0, -1], [3, 4, 6, 7, 7, 7]]}
JSON = st.recursive(st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats() | st.text(max_size=6)
                    | st.sampled_from(["none", "a", "onehot", "word", "scalar", "F32", "bos", "reversed=a"]),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
                    max_leaves=6)


def paths(node, prefix: tuple = ()) -> list[tuple]:
    """Every node of a JSON tree, as a path of keys and indices."""
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node[:40]):   # long lists (grids, labels): their first entries stand for the rest
            out += paths(v, prefix + (i,))
    return out


def get(node, path: tuple):
    for k in path:
        node = node[k]
    return node


@st.composite
def mutation(draw, meta: dict) -> tuple[tuple, str, object]:
    """One change to one node of the header: (path, kind, payload), applied by `mutate`."""
    path = draw(st.sampled_from(paths(meta)[1:]))
    parent, old = get(meta, path[:-1]), get(meta, path)
    kinds = ["replace", "nudge", "retype", "delete"] + (["duplicate", "swap"] if isinstance(parent, list) else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "replace":
        payload = draw(JSON)
    elif kind == "nudge":
        payload = (not old if isinstance(old, bool) else old + draw(st.sampled_from([1, -1, 0.5, 2 ** 40]))
                   if isinstance(old, (int, float)) else [] if isinstance(old, (dict, list)) else old + "x"
                   if isinstance(old, str) else 0)
    elif kind == "retype":
        payload = draw(st.sampled_from([str(old), [old], {"frac": str(old)}, {"tuple": [old]}]))
    else:
        payload = draw(st.integers(0, len(parent) - 1)) if kind == "swap" else None
    return path, kind, payload


def mutate(meta: dict, path: tuple, kind: str, payload) -> dict:
    """A copy of the header with the node at `path` replaced, deleted, duplicated or swapped."""
    m = copy.deepcopy(meta)
    parent, key = get(m, path[:-1]), path[-1]
    if kind == "delete":
        del parent[key]
    elif kind == "duplicate":
        parent.insert(key, copy.deepcopy(parent[key]))
    elif kind == "swap":
        parent[key], parent[payload] = parent[payload], parent[key]
    else:
        parent[key] = payload
    return m


def label_twin(meta: dict, mutant: dict, path: tuple) -> bool:
    """An output value replaced by another that its dim's label cannot tell apart (null and "none", 1 and "1")."""
    if len(path) != 4 or path[0] != "outputs" or path[2] != "values":
        return False
    try:
        a, b = get(meta, path), get(mutant, path)
        from hardwire.compiler.artifact import from_json
        return fmt(from_json(a)) == fmt(from_json(b))
    except (KeyError, IndexError, TypeError, ValueError):
        return False


def behaviour(path: str, name: str):
    model = load(path, "cpu")
    return run_batch(model, INPUTS[name], max_steps=40)


@functools.cache
def original(name: str) -> tuple[dict, dict, list]:
    """A valid file's header, tensors and answers (cached here, not a fixture: hypothesis prints fixtures)."""
    folder = Path(tempfile.mkdtemp())
    path = folder / f"{name}.safetensors"
    compile_program(check_file(str(PROGRAMS / f"{name}.hw"), {"mem": 8, "bits": 6} if name == "subleq" else None)
                    ).save(str(path))
    return header(path), load_file(str(path)), behaviour(str(path), name)


def check_mutant(name: str, data) -> None:
    meta, tensors, want = original(name)
    path, kind, payload = data.draw(mutation(meta), label="mutation")
    mutant = mutate(meta, path, kind, payload)
    write("m.safetensors", tensors, json.dumps(mutant))
    where = ".".join(map(str, path))
    try:
        got = behaviour("m.safetensors", name)
    except HardwireError:
        event("refused")
        return
    exempt = any(re.fullmatch(p, where) for p in SEMANTIC) or label_twin(meta, mutant, path)
    event("loads, a field only the certifier judges" if exempt else "loads, answers the same")
    assert exempt or same(got, want), f"{kind} of {where} loads and answers differently: {got} != {want}"


MUTATION_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                               HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("name", list(INPUTS))
@settings(max_examples=80, **MUTATION_SETTINGS)
@given(data=st.data())
def test_header_mutants_are_refused_or_behave_the_same(name, data):
    check_mutant(name, data)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(INPUTS))
@settings(max_examples=1500, **MUTATION_SETTINGS)
@given(data=st.data())
def test_header_mutants_are_refused_or_behave_the_same_long(name, data):
    check_mutant(name, data)


# ---- the wrong kind of file ------------------------------------------------------------------------------
PROGRAM_NOT_WEIGHTS = "reverse.hw: this is a hardwire program (.hw source), not a weight file; compile it first: " \
                      "`hardwire compile reverse.hw -o reverse.safetensors`"
WEIGHTS_NOT_PROGRAM = 'reverse.safetensors: this is a weight file (safetensors), not a .hw program; run it with ' \
                      '`hardwire run reverse.safetensors --input "..."` (compile and check read a program)'


@pytest.mark.parametrize("args", [["run", "reverse.hw", "--input", "a b", "--device", "cpu"],
                                  ["export", "reverse.hw", "--to", "onnx", "-o", "x.onnx"],
                                  ["export", "reverse.hw", "--to", "transformer-lens", "-o", "tl"],
                                  ["certify", "reverse.hw.safetensors"]],
                         ids=["run", "export-onnx", "export-transformer-lens", "certify"])
def test_a_program_where_a_weight_file_goes(capsys, args):
    if args[0] == "export":
        pytest.importorskip("onnx" if args[3] == "onnx" else "transformer_lens")
    shutil.copy(PROGRAMS / "reverse.hw", args[1])
    assert refused(capsys, args) == ERR + PROGRAM_NOT_WEIGHTS.replace("reverse.hw", args[1], 2)


def test_a_program_without_its_suffix_is_still_a_program(capsys):
    """Named by its content: a BOM, comments and blank lines, then a header line."""
    Path("prog.txt").write_text("\ufeff# a comment\n\n" + (PROGRAMS / "reverse.hw").read_text())
    assert sniff("prog.txt") == "program"
    assert refused(capsys, ["run", "prog.txt", "--input", "a"]) == \
        ERR + "prog.txt: this is a hardwire program (.hw source), not a weight file; compile it first: " \
              "`hardwire compile prog.txt -o prog.safetensors`"


def test_the_api_names_a_program_given_to_load():
    shutil.copy(PROGRAMS / "reverse.hw", "reverse.hw")
    with pytest.raises(HardwireError) as e:
        hardwire.load("reverse.hw")
    assert str(e.value) == PROGRAM_NOT_WEIGHTS


@pytest.mark.parametrize("args", [["compile", "reverse.safetensors", "-o", "out.safetensors"],
                                  ["check", "reverse.safetensors"],
                                  ["certify", "reverse.safetensors.hw"]],
                         ids=["compile", "check", "certify"])
def test_a_weight_file_where_a_program_goes(capsys, models, args):
    """(explain reads either kind: tests/test_explain.py has its weight-file pages.)"""
    shutil.copy(models["reverse"], args[1])
    assert refused(capsys, args) == ERR + WEIGHTS_NOT_PROGRAM.replace("reverse.safetensors", args[1])


def test_the_api_names_a_weight_file_given_to_compile_file(models):
    shutil.copy(models["reverse"], "reverse.safetensors")
    with pytest.raises(HardwireError) as e:
        hardwire.compile_file("reverse.safetensors")
    assert str(e.value) == WEIGHTS_NOT_PROGRAM


@pytest.mark.parametrize("content,kind", [(b"", None), (b"\x00\x01binary", None), (b"hello world\n", None),
                                          (b"program p\n", "program"), (b"  vocab {1}\n", "program"),
                                          ("caf\u00e9 = 1\n".encode(), None)])
def test_sniff(content, kind):
    Path("f").write_bytes(content)
    assert sniff("f") == kind


# ---- compile: a vocabulary over the value budget ---------------------------------------------------------
def test_vocab_over_the_value_budget_is_refused_before_allocating(capsys, monkeypatch):
    """A 200,001-token vocabulary once tried a 298 GiB allocation; here the budget is lowered to keep it quick."""
    import hardwire.compiler.check.elaborate as elaborate
    monkeypatch.setattr(elaborate, "VALUE_BUDGET", 50)
    Path("v.hw").write_text("program v\nvocab {" + ", ".join(map(str, range(51))) + "}\nmax_len 4\noutput y = tokens\n")
    assert refused(capsys, ["compile", "v.hw", "-o", "v.safetensors"]) == \
        ERR + "v.hw:2:1: vocab lists 51 tokens, over the value budget of 50 (a one-hot embedding of that many is " \
              "2,704 weights, 0 GiB to build)"


@pytest.mark.slow
def test_vocab_of_200001_tokens_is_refused(capsys):
    Path("v.hw").write_text("program v\nvocab {" + ", ".join(map(str, range(200_001))) + "}\nmax_len 4\n"
                            "output y = tokens\n")
    assert refused(capsys, ["compile", "v.hw", "-o", "v.safetensors"]) == \
        ERR + "v.hw:2:1: vocab lists 200,001 tokens, over the value budget of 200,000 (a one-hot embedding of that " \
              "many is 40,000,800,004 weights, 298 GiB to build)"


def test_check_header_is_the_loaders_check(models):
    """check_header takes the parsed header and each tensor's (dtype, shape): what runtime.model.load passes."""
    meta, t = header(models["reverse"]), load_file(str(models["reverse"]))
    shapes = {k: ("F32", list(v.shape)) for k, v in t.items()}
    check_header(meta, shapes, "m")
    assert meta["format"] == FORMAT
    with pytest.raises(HardwireError, match="is stored as float64"):
        check_header(meta, {**shapes, "embed.tokens": ("F64", shapes["embed.tokens"][1])}, "m")
