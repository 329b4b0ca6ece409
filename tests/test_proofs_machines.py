"""The machine proofs (proofs/turing_loop.md, turing_cot.md, subleq.md, library.md) against the code.

Each proof file exists, cites the shared lemmas and its relative links resolve; each size formula, coded here
as its proof's "Size" section states it, equals what the compiler builds at a few parameter values.
"""
import math
import re
from pathlib import Path

import pytest

import hardwire
from hardwire.machines.turing import tm as tmlib

ROOT = Path(__file__).resolve().parents[1]
PROOFS = ROOT / "proofs"
MINE = ["turing_loop", "turing_cot", "subleq", "library"]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FUSE_BUDGET = 4096  # compiler/fuse.py: the largest input product one fused lookup may have


def sizes(model) -> tuple:
    s = model.summary()
    return s["layers"], s["heads"], s["d_model"], s["d_mlp"], s["d_head"]


@pytest.mark.parametrize("name", MINE)
def test_proof_exists_cites_the_lemmas_and_its_links_resolve(name):
    path = PROOFS / f"{name}.md"
    text = path.read_text()
    assert text.startswith("# ") and "**Theorem" in text
    assert "lemmas.md" in text
    bad = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a URL, or an anchor in this file
        file = target.partition("#")[0]
        if not (path.parent / file).resolve().exists():
            bad.append(target)
    assert not bad, f"{name}.md links to missing files: {bad}"


# --- proofs/subleq.md, "Size" ---------------------------------------------------------------------------------

def subleq_size(mem: int, w: int) -> tuple:
    """(layers, heads, d_model, d_mlp, d_head, params) of programs/subleq.hw with `mem` words of `w` bits."""
    d = 13 * w + 26
    return 4, 5, d, 34 * w + 52, w + 1, d * (mem + 109 * w + 248)


@pytest.mark.parametrize("mem,w", [(16, 5), (64, 8), (256, 16), (100, 32)])
def test_subleq_size_formula(mem, w):
    model = hardwire.compile_file(str(ROOT / "programs" / "subleq.hw"), params={"mem": mem, "bits": w}, device="cpu")
    want = subleq_size(mem, w)
    assert sizes(model) == want[:5]
    assert model.summary()["params"] == want[5]
    per_layer = [layer["d_mlp"] for layer in model.compiled.config["layers"]]
    assert per_layer == [4 * w + 15, 6 * w + 30, 16, 34 * w + 52]


# --- proofs/turing_loop.md, "Size" ----------------------------------------------------------------------------

def loop_params(machine: tmlib.Machine, cells: int, offset: int) -> dict:
    """The quantities the size formula is written in: n states, k symbols, w bits, r target states, mu moves."""
    defined = [t for t in machine.table.values() if t is not None]
    return {"n": len(machine.states), "k": machine.symbols,
            "w": max(4, (cells + offset + 2).bit_length() + 1),
            "r": len({t[2] for t in defined} - {tmlib.HALT}),
            "mu": len({t[1] for t in defined} | {0})}


def turing_loop_size(n: int, k: int, w: int, r: int, mu: int) -> tuple:
    d_model = 3 * w + n + r + 3 * k + mu + 17
    d_mlp = max(4 * (n + 2) * (k + 1) + 5, 8 * w + 4 * n + 4 * r + 12 * k + 2 * mu + 40)
    return 3, 1, d_model, d_mlp, max(w + 1, k + 1)


@pytest.mark.parametrize("spec,tape,cells", [
    ("1RB1LB_1LA0LC_1RZ1LD_1RD0RA", [], None),      # programs/turing_loop.hw
    ("1RB1LB_1LA0LC_1RZ1LD_1RD0RA", [], 300),       # the same machine on a wider tape: w = 10
    ("1RB2LB1RZ_2LA2RB1LB", [0, 1, 2, 0], None),    # 3 symbols
    ("0LD0LE_1LC0LE_0RB1RF_1RE1LD_0LF0LC_0LF1LD", [], None),  # 6 states, A never a target (r = 5)
    ("1RB---_1RA0RZ", [], None),                    # only right moves (mu = 2), an undefined cell
])
def test_turing_loop_size_formula(spec, tape, cells):
    machine = tmlib.parse_spec(spec)
    ref = tmlib.simulate(machine, tape, max_steps=200)
    cells, offset = tmlib.window_for(machine, tape, ref, cells)
    model = hardwire.compile_source(tmlib.loop_program(machine, cells, offset), name="turing_loop", device="cpu")
    assert sizes(model) == turing_loop_size(**loop_params(machine, cells, offset))


def test_checked_in_turing_loop_is_the_formula_at_n4_k2_w6():
    model = hardwire.compile_file(str(ROOT / "programs" / "turing_loop.hw"), device="cpu")
    assert sizes(model) == turing_loop_size(n=4, k=2, w=6, r=4, mu=3) == (3, 1, 52, 150, 7)


# --- proofs/turing_cot.md, "Size" -----------------------------------------------------------------------------

def cot_sets(machine: tmlib.Machine, lo: int, hi: int, L: int) -> dict:
    """The value-set sizes the size formula is written in (proofs/turing_cot.md, "Residual layout"): cells
    written C, head values H, written symbols W (none not counted), states Q, next tokens Nn (with `halt`), and
    the word width B that holds every index 0..L and every cell lo..hi."""
    defined = [t for t in machine.table.values() if t is not None]
    moves = {t[1] for t in defined}
    cells = {h for h in range(lo, hi + 1) if any(lo <= h + m <= hi for m in moves)}
    heads = {h + m for h in range(lo, hi + 1) for m in moves if lo <= h + m <= hi} | {0, lo}
    steps = {(t[2], t[0], t[1], h + t[1]) for t in defined for h in range(lo, hi + 1) if lo <= h + t[1] <= hi}
    return {"C": len(cells), "H": len(heads), "W": len({t[0] for t in defined}),
            "B": max(L, -lo, hi + 1).bit_length() + 1,
            "Q": len({"A", tmlib.HALT} | {t[2] for t in defined}), "Nn": len(steps) + 1, "k": machine.symbols}


def turing_cot_size(L: int, C: int, H: int, W: int, Q: int, Nn: int, k: int, B: int) -> tuple:
    d_model = C + H + 2 * W + Q + Nn + 2 * k + 2 * B + 8
    product = Q * H * (W + 1) * (k + 1)
    d_head = max(C + 3, B + 1)
    if product <= FUSE_BUDGET:  # one lookup over (q, h, written, given): one layer
        return 1, 2, d_model, product, d_head
    return 2, 2, d_model + k, max((W + 1) * (k + 1), Q * H * k), d_head  # sym gets its own MLP: two layers


@pytest.mark.parametrize("spec,tape,steps", [
    ("1RB1LB_1LA0LC_1RZ1LD_1RD0RA", [], 1000),      # programs/turing_cot.hw
    ("1RB2LB1RZ_2LA2RB1LB", [0, 1, 2, 0], 1000),    # 3 symbols, a non-blank prompt
    ("0RB1RA_1LA1LA", [], 200),                     # bench/results/tm.json's 2-state row
    ("1RB---_1RC---_1RD---_1RE---_1RA---", [], 120),  # a 121-cell window: over the fusion budget, 2 layers
])
def test_turing_cot_size_formula(spec, tape, steps):
    machine = tmlib.parse_spec(spec)
    prompt = tape or [0]
    ref = tmlib.simulate(machine, prompt, max_steps=steps)
    cells, offset = tmlib.window_for(machine, prompt, ref, None)
    lo, hi = -offset, cells - offset - 1
    L = tmlib.cot_length(len(prompt), ref)
    model = hardwire.compile_source(tmlib.cot_program(machine, len(prompt), lo, hi, L), name="turing_cot",
                                    device="cpu")
    assert sizes(model) == turing_cot_size(L, **cot_sets(machine, lo, hi, L))


def test_checked_in_turing_cot_is_the_formula():
    model = hardwire.compile_file(str(ROOT / "programs" / "turing_cot.hw"), device="cpu")
    # L = 108 tokens, 14 cells (-10..3), D = 8 distinct (next, write, move) triples: nv = 8 * 13 + 1; B = 8 bits
    assert sizes(model) == turing_cot_size(L=108, C=14, H=14, W=2, Q=5, Nn=105, k=2, B=8) == (1, 2, 170, 630, 17)


# --- proofs/library.md, a "Size" line per program (N = max_len, V = vocabulary size) -----------------------------

LIBRARY = {
    "caesar": (lambda N, V: (0, 0, 3, 0, 0), [4, 16, 50]),
    "length": (lambda N, V: (1, 1, 4, 2 * N - 1, 2), [4, 32, 60]),
    "histogram": (lambda N, V: (1, 1, V + 4, 2 * N + 1, V + 1), [4, 16, 60]),
    "frac_prevs": (lambda N, V: (1, 1, 4, 0, 2), [4, 32, 60]),     # prefix selects: `true` under the mask
    "pair_balance": (lambda N, V: (1, 1, 5, 0, 2), [4, 16, 40]),
    "dyck1": (lambda N, V: (3, 2, 9, 8, 2), [4, 16, 40]),
    "dyck2": (lambda N, V: (4, 3, 16, 16, 2), [4, 12, 30]),
    "reverse": (lambda N, V: (3, 2, 2 * N + V + 4, 4 * N, 3), [4, 16, 30]),
    "sort": (lambda N, V: (3, 3, N + V + 9, 4 * N + 2, N + V + 1),
             [4, 7, 10]),
    "sort_unique": (lambda N, V: (2, 2, V + 8, 2 * N + 1, V + 1), [3, 5, 8]),
}


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_library_size_formulas(name):
    formula, lengths = LIBRARY[name]
    text = (ROOT / "programs" / f"{name}.hw").read_text()
    for N in lengths:
        source = re.sub(r"^max_len \d+$", f"max_len {N}", text, flags=re.M)
        model = hardwire.compile_source(source, name=f"{name}.hw", device="cpu")
        V = len(model.compiled.config["vocab"])
        assert sizes(model) == formula(N, V), f"{name} at max_len {N}"


def test_caesar_size_does_not_depend_on_the_shift():
    for shift in (0, 1, 3):
        model = hardwire.compile_file(str(ROOT / "programs" / "caesar.hw"), params={"shift": shift}, device="cpu")
        assert sizes(model) == (0, 0, 3, 0, 0)


# --- precision figures quoted by proofs/subleq.md and proofs/turing_loop.md -----------------------------------

def widest_preactivation(model) -> float:
    """max over hidden units of sum |W_in| over every dimension but bos: bounds every partial sum of a unit's
    pre-activation while the residual's entries lie in [0, 1] (proofs/subleq.md, "Precision")."""
    tensors, worst = model.compiled.tensors, 0.0
    for i in range(model.compiled.config["n_layers"]):
        w = tensors.get(f"layers.{i}.mlp.W_in")
        if w is not None:
            worst = max(worst, float(abs(w[1:]).sum(0).max()))
    return worst


@pytest.mark.parametrize("w", [8, 20, 21])
def test_subleq_partial_sums_bound(w):
    model = hardwire.compile_file(str(ROOT / "programs" / "subleq.hw"), params={"mem": 16, "bits": w}, device="cpu")
    s = widest_preactivation(model)
    assert s == 5 * 2 ** w - 2.5
    assert (s < 2 ** 23) == (w <= 20)  # half-integers are exact in float32 below 2^23


def test_turing_loop_partial_sums_bound():
    machine = tmlib.parse_spec("1RB1LB_1LA0LC_1RZ1LD_1RD0RA")
    for cells, offset in [(14, 10), (1 << 14, (1 << 14) - 1)]:  # the checked-in window; the CLI's widest
        w = loop_params(machine, cells, offset)["w"]
        model = hardwire.compile_source(tmlib.loop_program(machine, cells, offset), name="t", device="cpu")
        assert widest_preactivation(model) == 6 * 2 ** w - 2.5 < 2 ** 23
    assert w == 17 and math.log2(6 * 2 ** 17) < 20
