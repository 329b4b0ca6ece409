"""A certificate that cannot be fooled (issue 17): edited weight files and headers are refused, naming the part,
and whatever certify still calls exact runs equal to the interpreter up to the certified length."""
import json
import os
from functools import cache

import numpy as np
import pytest
from hardwire.compiler.artifact import CompiledModel
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardwire.certify.certifier import Model, certify
from hardwire.certify.program import against, program_hash
from hardwire.cli.main import main
from tests.test_certify import PROGRAMS, compiled, names


def f32(c) -> dict:
    """A compiled model's tensors as a saved file holds them (float32 values, in float64)."""
    return {k: v.astype(np.float32).astype(np.float64) for k, v in c.tensors.items()}


def cert_of(c, tensors=None, config=None, labels=None, outputs=None):
    """certify a (possibly edited) file's tensors and header against the program `c` was compiled from."""
    model, mismatch = against(tensors if tensors is not None else f32(c), config or c.config,
                              labels or c.labels, outputs or c.outputs, c)
    if mismatch is not None:
        return None, mismatch
    cert = certify(model)
    return cert, cert.failure


def failure(c, change) -> str:
    """The refusal of `c` with change(tensors) applied to a copy of its float32 weights (asserted refused)."""
    t = f32(c)
    change(t)
    cert, why = cert_of(c, t)
    assert cert is not None and not cert.ok and cert.length == 0, cert.statement
    return why


def attn_layers(c) -> list[int]:
    return [i for i, layer in enumerate(c.config["layers"]) if layer["heads"]]


# ---- the edits of issue 17, each refused and named -------------------------------------------------------
@pytest.mark.parametrize("name", ["reverse", "sort"])
@pytest.mark.parametrize("factor", [0.9, 1.05])
def test_a_scaled_W_O_is_refused_naming_the_head_and_its_value_path(name, factor):
    _, c = compiled(name)
    for i in attn_layers(c):
        def scale(t, i=i):
            t[f"layers.{i}.attn.W_O"] *= factor
        why = failure(c, scale)
        assert why.startswith(f"layer {i} head 0: its value path (W_V·W_O) writes"), why
        assert f"where program {name}'s writes" in why


@pytest.mark.parametrize("name", ["reverse", "sort"])
def test_a_zeroed_W_V_is_refused_naming_the_head(name):
    _, c = compiled(name)
    for i in attn_layers(c):
        def zero(t, i=i):
            t[f"layers.{i}.attn.W_V"][:] = 0
        why = failure(c, zero)
        assert why.startswith(f"layer {i} head 0: its value path (W_V·W_O) writes 0 to "), why


@pytest.mark.parametrize("name", ["reverse", "sort"])
def test_swapped_token_rows_are_refused_naming_the_row(name):
    _, c = compiled(name)

    def swap(t):
        t["embed.tokens"][[1, 2]] = t["embed.tokens"][[2, 1]]
    why = failure(c, swap)
    assert why.startswith('embed.tokens row 1 (token '), why
    assert f"where program {name}'s embedding has" in why and "(tokens=" in why


@pytest.mark.parametrize("name", ["reverse", "sort"])
def test_a_scaled_last_position_row_is_refused_naming_it(name):
    _, c = compiled(name)
    last = c.config["max_len"]

    def scale(t):
        t["embed.positions"][-1] *= 0.9
    assert failure(c, scale).startswith(f"embed.positions row {last} (input position {last - 1}): dim ")


def test_causal_flipped_in_the_header_is_refused_naming_the_field():
    _, c = compiled("reverse")
    cert, why = cert_of(c, config={**c.config, "causal": True})
    assert cert is None and why == "config.causal: the file has true, but program reverse compiles to false"


@pytest.mark.parametrize("field,value", [("exact_len", True), ("bos_token_id", 3), ("max_len", 8),
                                         ("groups", []), ("generate", {"output": "reversed", "stop": ["a"]})])
def test_every_config_field_that_changes_the_computation_is_the_programs(field, value):
    _, c = compiled("reverse")
    cert, why = cert_of(c, config={**c.config, field: value})
    assert cert is None and why.startswith(f"config.{field}") and "program reverse compiles to" in why


def test_loop_and_stop_blocks_are_the_programs():
    _, c = compiled("turing_loop")
    loop = json.loads(json.dumps(c.config["loop"]))
    loop["body_layers"] -= 1
    _, why = cert_of(c, config={**c.config, "loop": loop})
    assert why.startswith("config.loop.body_layers: the file has")
    _, g = compiled("parity_cot")
    gen = {**g.config["generate"], "stop": [1]}
    _, why = cert_of(g, config={**g.config, "generate": gen})
    assert why.startswith("config.generate.stop: the file has 1 entries")
    _, why = cert_of(g, config={k: v for k, v in g.config.items() if k != "generate"})
    assert why.startswith('config.generate: the file has (absent), but program parity_cot compiles to {')


def test_an_output_decoder_changed_is_refused():
    _, c = compiled("sort")
    outputs = json.loads(json.dumps(c.outputs))
    name = next(iter(outputs))
    outputs[name]["encoding"] = "word"
    _, why = cert_of(c, outputs=outputs)
    assert why.startswith(f"outputs.{name}.encoding: the file has word")


def test_empty_value_sets_do_not_certify_even_without_a_reference():
    _, c = compiled("reverse")
    cert = certify(Model(f32(c), {**c.config, "groups": []}, c.labels, c.outputs))
    assert not cert.ok and cert.failure.startswith("config.groups: 38 residual dims have no value set")


@pytest.mark.parametrize("reference", [True, False])
def test_weights_of_3e38_are_refused_naming_the_tensor(reference):
    _, c = compiled("reverse")
    t = f32(c)
    t["layers.0.attn.W_V"][0, 2, 0] = 3e38
    cert = certify(Model(t, c.config, c.labels, c.outputs, reference=f32(c) if reference else None))
    assert not cert.ok and cert.failure.startswith("layers.0.attn.W_V: holds a weight of 3e+38 at [0, 2, 0]")


def test_swapped_head_dims_of_W_O_are_refused():
    """Rows 0 and 1 of W_O swapped: the head copies a's code where b's belongs (found by the property below,
    when the value path skipped every code but BOS's)."""
    _, c = compiled("reverse")
    i = attn_layers(c)[-1]

    def swap(t):
        t[f"layers.{i}.attn.W_O"][0][[0, 1]] = t[f"layers.{i}.attn.W_O"][0][[1, 0]]
    why = failure(c, swap)
    assert why.startswith(f"layer {i} head 0: its value path (W_V·W_O) writes 0 to ") and "(tokens=a)" in why, why


def test_a_score_path_that_selects_other_keys_is_refused_naming_the_head():
    """W_Q's one-hot rows permuted: the head stays hard (the certifier's old check passed it) but selects
    other keys."""
    _, c = compiled("reverse")
    i = attn_layers(c)[-1]
    wq = c.tensors[f"layers.{i}.attn.W_Q"][0]
    rows = np.nonzero(np.abs(wq).sum(1))[0]
    rows = [r for r in rows if r > 1][:2]

    def permute(t):
        t[f"layers.{i}.attn.W_Q"][0][rows] = t[f"layers.{i}.attn.W_Q"][0][rows[::-1]]
    why = failure(c, permute)
    assert why.startswith(f"layer {i} head 0: its score path (W_Q, W_K) selects other keys"), why


def test_a_moved_lookup_is_refused_naming_the_neurons():
    from tests.test_certify import lookup_units
    _, c = compiled("sort")
    i, j = lookup_units(c)[0]

    def move(t):
        row = t[f"layers.{i}.mlp.W_out"][j]
        row[np.nonzero(row)[0][0]] += 0.25
    why = failure(c, move)
    assert why.startswith(f"layer {i} MLP neurons [") and str(j) in why.split("]")[0], why


def test_a_unit_reading_a_dim_the_program_does_not_is_refused():
    """Noise on W_in's zeros (1e-9): each unit would read every dim, and the analysis enumerate them all."""
    _, c = compiled("sort")

    def noise(t):
        t["layers.0.mlp.W_in"][t["layers.0.mlp.W_in"] == 0] = 1e-9
    why = failure(c, noise)
    assert why.startswith("layer 0 MLP: neuron ") and "(weight 1e-09), which program sort's does not read" in why


def test_a_norm_edited_is_refused():
    _, c = compiled("parity_cc")

    def edit(t):
        t["layers.1.norm.W_out"][0] *= 1.0001
    assert failure(c, edit).startswith("layer 1 norm: layers.1.norm.W_out holds")


def test_a_loop_whose_bos_residual_moves_is_refused():
    """BOS's residual after the body is where the next pass starts: it must be the program's."""
    _, c = compiled("turing_loop")

    def nudge(t):
        t["embed.tokens"][0, 1] += 1e-6  # BOS's not_bos, below DEV_LIMIT
    assert failure(c, nudge) == ("loop body: BOS's residual after a pass is not program turing_loop's, and the "
                                 "next pass starts from it")


def test_a_deviation_below_the_limit_propagates_into_the_bound():
    """A tiny edit of W_O (1e-6 relative) is not refused outright: it is carried in the error bound, which grows."""
    _, c = compiled("reverse")
    i = attn_layers(c)[-1]
    t = f32(c)
    t[f"layers.{i}.attn.W_O"] *= 1 + 1e-6
    base, _ = cert_of(c)
    cert, _ = cert_of(c, t)
    assert cert.ok and base.ok
    assert cert.output_error["reversed"] > base.output_error["reversed"]


# ---- the command line: files, --program, embedded programs ---------------------------------------------
def compile_to(tmp_path, name: str, *params: str):
    out = tmp_path / f"{name}.safetensors"
    args = ["compile", str(PROGRAMS / f"{name}.hw"), "-o", str(out)]
    for p in params:
        args += ["--param", p]
    assert main(args) == 0
    return out


def rewrite(path, tensors=None, meta=None):
    """Edit a weight file as an adversary would: its tensors and/or its header JSON, saved back."""
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file
    with safe_open(str(path), "np") as f:
        header = json.loads(f.metadata()["hardwire"])
    t = load_file(str(path))
    if tensors:
        tensors(t)
    if meta:
        meta(header)
    save_file(t, str(path), metadata={"hardwire": json.dumps(header)})


def certify_cli(capsys, *args):
    capsys.readouterr()
    rc = main(["certify", *map(str, args), "--json"])
    out = capsys.readouterr()
    return rc, (json.loads(out.out) if out.out else None), out.err


def test_a_file_certifies_as_its_embedded_program(tmp_path, capsys):
    f = compile_to(tmp_path, "reverse")
    rc, info, _ = certify_cli(capsys, f)
    assert rc == 0 and info["program_from"] == "the file's header"
    text = (PROGRAMS / "reverse.hw").read_text()
    assert info["program_sha256"] == program_hash(text, {})
    assert info["claim"].startswith("this file computes program reverse for every input of length up to 16 in "
                                    "float32 (program sha256 ")


def test_certify_program_matching_certifies_other_refused(tmp_path, capsys):
    f = compile_to(tmp_path, "parity_count", "n=8")
    rc, info, _ = certify_cli(capsys, f, "--program", PROGRAMS / "parity_count.hw", "--param", "n=8")
    assert rc == 0 and info["certified"] and info["program_from"].endswith("parity_count.hw")
    assert "computes program parity_count (n=8) for every input of length up to 8" in info["claim"]
    rc, info, _ = certify_cli(capsys, f, "--program", PROGRAMS / "parity_count.hw")  # its default n
    assert rc == 1 and not info["certified"] and info["failure"].startswith("config.max_len: the file has 8")
    rc, info, _ = certify_cli(capsys, f, "--program", PROGRAMS / "reverse.hw")
    assert rc == 1 and "program reverse compiles to" in info["failure"]


def test_certify_program_refuses_a_file_edited_in_the_header(tmp_path, capsys):
    f = compile_to(tmp_path, "reverse")
    rewrite(f, meta=lambda h: h["config"].update(causal=True))
    for extra in ([], ["--program", PROGRAMS / "reverse.hw"]):
        rc, info, _ = certify_cli(capsys, f, *extra)
        assert rc == 1 and info["failure"] == "config.causal: the file has true, but program reverse compiles to false"
    capsys.readouterr()
    assert main(["certify", str(f)]) == 1
    assert "not certified in float32: config.causal" in capsys.readouterr().out


def test_certify_names_the_tensor_of_an_edited_file(tmp_path, capsys):
    f = compile_to(tmp_path, "reverse")
    rewrite(f, tensors=lambda t: t.update({"layers.2.attn.W_O": t["layers.2.attn.W_O"] * 0.9}))
    rc, info, _ = certify_cli(capsys, f)
    assert rc == 1 and info["failure"].startswith("layer 2 head 0: its value path (W_V·W_O) writes 0.9 to ")


def test_a_file_without_its_program_is_refused_with_one_line(tmp_path, capsys):
    f = compile_to(tmp_path, "reverse")
    rewrite(f, meta=lambda h: h["config"].pop("source"))
    rc, _, err = certify_cli(capsys, f)
    assert rc == 2 and err.count("\n") == 1
    assert "this weight file carries no program (config.source" in err and "--program PROG.hw" in err
    rc, info, _ = certify_cli(capsys, f, "--program", PROGRAMS / "reverse.hw")  # an old file: give its program
    assert rc == 0 and info["certified"]


def test_an_edited_program_text_is_refused_by_its_hash(tmp_path, capsys):
    f = compile_to(tmp_path, "reverse")
    rewrite(f, meta=lambda h: h["config"]["source"].update(text=h["config"]["source"]["text"] + "\n"))
    rc, _, err = certify_cli(capsys, f)
    assert rc == 2 and err.count("\n") == 1 and "does not match its sha256 (config.source was edited)" in err


def test_a_replaced_program_with_a_new_hash_is_not_the_files(tmp_path, capsys):
    """Swap in another program's text with a matching hash: the certificate is then about that program,
    and the file's header and weights are not what it compiles to."""
    f = compile_to(tmp_path, "reverse")
    text = (PROGRAMS / "reverse.hw").read_text().replace("max_len 16", "max_len 12")

    def swap(h):
        h["config"]["source"] = {"text": text, "params": {}, "sha256": program_hash(text, {})}
    rewrite(f, meta=swap)
    rc, info, _ = certify_cli(capsys, f)
    assert rc == 1 and info["failure"].startswith("config.max_len: the file has 16, but program reverse compiles "
                                                  "to 12")


def test_a_malformed_program_record_is_refused_with_one_line(tmp_path, capsys):
    f = compile_to(tmp_path, "reverse")
    rewrite(f, meta=lambda h: h["config"].update(source="x"))
    rc, _, err = certify_cli(capsys, f)
    assert rc == 2 and err.count("\n") == 1
    assert "corrupt weight file: config.source needs a program text, integer params and a sha256" in err


def test_program_option_on_a_program_is_refused(capsys):
    rc, _, err = certify_cli(capsys, PROGRAMS / "reverse.hw", "--program", PROGRAMS / "reverse.hw")
    assert rc == 2 and err.count("\n") == 1 and "--program is for a weight file" in err


def test_param_without_program_for_a_weight_file_is_refused(tmp_path, capsys):
    f = compile_to(tmp_path, "reverse")
    rc, _, err = certify_cli(capsys, f, "--param", "n=3")
    assert rc == 2 and err.count("\n") == 1 and "--param needs --program PROG.hw" in err


def test_the_statement_names_the_program_in_text(tmp_path, capsys):
    f = compile_to(tmp_path, "sort")
    capsys.readouterr()
    assert main(["certify", str(f)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "sort (float32): exact for every input of length up to 10 in float32"
    assert lines[1].startswith("  this file computes program sort for every input of length up to 10 in float32")


# ---- the property: whatever is certified after an edit is exact ----------------------------------------
@cache
def reference(name: str):
    """The program, its compiled model, and the certifier's cache after certifying it: an edited model reuses
    the entries of the layers it leaves alone (each entry is a function of one layer's weights, BOS's residual
    there and the value sets only), so an edit costs what its own layers cost."""
    prog, c = compiled(name)
    model, _ = against(f32(c), c.config, c.labels, c.outputs, c)
    certify(model)
    return prog, c, model


def layer_of(key) -> int | None:
    return key[1] if isinstance(key, tuple) and len(key) > 1 and isinstance(key[1], int) else None


def seeded(model: Model, base: Model) -> Model:
    """model with base's cache entries for every layer whose weights and BOS residual are base's."""
    for key, v in base.cache.items():
        i = layer_of(key)
        if i is None or not np.array_equal(model.bos[i], base.bos[i]):
            continue
        names = [n for n in model.t if n.startswith(f"layers.{i}.")]
        if all(np.array_equal(model.t[n], base.t[n]) for n in names):
            model.cache[key] = v
    return model


@cache
def interpreted(name: str, length: int, samples: int) -> tuple[list, list]:
    """Sampled inputs up to `length` (as tests/test_certify.py's holds_at draws them) and the interpreter's
    answers, computed once per program and length."""
    from hardwire.harness import interpret_batch
    from tests.test_certify import inputs_up_to
    prog, _, _ = reference(name)
    inputs = inputs_up_to(prog, length, samples, seed=length)
    return inputs, interpret_batch(prog, inputs, max_steps=200)


def edit_strategy(data, c) -> tuple[str, dict | None, dict | None]:
    """A random edit of a compiled model: (what, tensors, config), one of them edited."""
    t = f32(c)
    if data.draw(st.integers(0, 9), label="header?") == 0:
        cfg = json.loads(json.dumps(c.config))
        leaves = []

        def walk(v, path):
            if isinstance(v, dict):
                for k in v:
                    walk(v[k], path + [k])
            elif isinstance(v, list) and v and not all(isinstance(x, (int, float)) for x in v[:1]):
                for k in range(min(len(v), 3)):
                    walk(v[k], path + [k])
            else:
                leaves.append(path)
        walk(cfg, [])
        path = data.draw(st.sampled_from(leaves), label="field")
        box = cfg
        for k in path[:-1]:
            box = box[k]
        old = box[path[-1]]
        if isinstance(old, bool):
            new = not old
        elif isinstance(old, (int, float)):
            new = old + data.draw(st.sampled_from([1, -1, 0.5]))
        elif isinstance(old, list):
            new = old[:-1] if old else [0]
        elif isinstance(old, str):
            new = old + "x"
        else:
            new = 0
        box[path[-1]] = new
        return f"config.{'.'.join(map(str, path))} = {str(new)[:30]}", None, cfg
    name = data.draw(st.sampled_from(sorted(t)), label="tensor")
    w = t[name]
    flat = w.reshape(-1, w.shape[-1])  # rows: the last axis' vectors (per head for attention)
    kind = data.draw(st.sampled_from(["row", "col", "all", "swap", "zero", "perturb"]), label="kind")
    factor = data.draw(st.sampled_from([0.0, 0.5, 0.9, 1 - 1e-6, 1 + 1e-7, 1.05, 2.0, -1.0]), label="factor")
    r = data.draw(st.integers(0, len(flat) - 1), label="row")
    col = data.draw(st.integers(0, flat.shape[1] - 1), label="col")
    if kind == "row":
        flat[r] *= factor
    elif kind == "col":
        flat[:, col] *= factor
    elif kind == "all":
        flat *= factor
    elif kind == "swap":
        r2 = data.draw(st.integers(0, len(flat) - 1), label="row2")
        flat[[r, r2]] = flat[[r2, r]]
    elif kind == "zero":
        flat[r:r + data.draw(st.integers(1, 8)), col:col + data.draw(st.integers(1, 8))] = 0
    else:
        rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 16), label="seed"))
        size = data.draw(st.sampled_from([1e-9, 1e-7, 1e-5, 1e-3, 0.1]), label="size")
        mask = rng.random(flat.shape) < data.draw(st.sampled_from([0.01, 0.1, 1.0]), label="density")
        flat += mask * size * rng.standard_normal(flat.shape) * np.maximum(np.abs(flat), 1e-3)
    return f"{name} {kind} x{factor} at {r},{col}", t, None


TALLY: dict = {}


def certified_edit_holds(name: str, data, samples: int) -> None:
    """One random edit: when certify still calls the model exact up to L, it equals the interpreter on sampled
    inputs up to L. An edit that leaves every weight and the header as compiled certifies the compiled model,
    which tests/test_certify.py runs; it is counted, not run again."""
    from hardwire.runtime import model as runtime

    from hardwire.harness import run_batch
    prog, c, base = reference(name)
    what, tensors, config = edit_strategy(data, c)
    tally = TALLY.setdefault(name, {"edits": 0, "certified": 0, "certified_changed": 0, "checked_runs": 0})
    tally["edits"] += 1
    changed = tensors is not None and any(not np.array_equal(tensors[k], v) for k, v in f32(c).items())
    model, why = against(tensors if tensors is not None else f32(c), config or c.config, c.labels, c.outputs, c)
    if model is not None and not changed:  # the compiled model itself: certify is deterministic, and
        tally["certified"] += 1            # tests/test_certify.py certifies and runs it
        return
    cert = certify(seeded(model, base)) if model is not None else None
    if cert is not None and cert.length:
        tally["certified"] += 1
        if changed:
            tally["certified_changed"] += 1
            inputs, want = interpreted(name, cert.length, samples)
            got = run_batch(runtime.from_compiled(CompiledModel(tensors, c.config, c.labels, c.outputs), "cpu"),
                            inputs, max_steps=200)
            assert got == want, f"{what}: certified ({cert.statement}) but wrong"
            tally["checked_runs"] += 1
    if os.environ.get("HW_TALLY"):  # the slow run's record: edits, certified, certified and changed, runs checked
        with open(os.environ["HW_TALLY"], "w") as fh:
            json.dump(TALLY, fh, sort_keys=True)


@pytest.mark.parametrize("name", names())
@settings(max_examples=3, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(data=st.data())
def test_any_edit_certify_calls_exact_is_exact(name, data):
    certified_edit_holds(name, data, samples=4)


@pytest.mark.slow
@pytest.mark.parametrize("name", names())
@settings(max_examples=500, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(data=st.data())
def test_any_edit_certify_calls_exact_is_exact_500(name, data):
    certified_edit_holds(name, data, samples=6)


@pytest.fixture(scope="module", autouse=True)
def report_tally():
    """Print how many edits were certified (and of those, how many changed a weight) per program."""
    yield
    if TALLY:
        print("\nedits per program:", json.dumps(TALLY, sort_keys=True))

