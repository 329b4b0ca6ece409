"""The written proofs in proofs/ against the code.

Every proof file the index names exists, every relative link in a proof resolves (to a file, and an
anchor into a proof to one of its headings or ids), and each construction's size formula, as its proof
states it, equals what the compiler builds at a few parameter values.
"""
import json
import re
from pathlib import Path

import pytest

import hardwire

ROOT = Path(__file__).resolve().parents[1]
PROOFS = ROOT / "proofs"
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CONSTRUCTIONS = ["parity_count", "parity_cc", "parity_cot", "add_lsb", "add_msb", "add_cot"]
OTHERS = ["turing_loop", "turing_cot", "subleq", "library",  # written beside these, by the other proof writer
          "index_attention", "subleq_cot"]


def index_links() -> list[str]:
    return [t for t in LINK.findall((PROOFS / "README.md").read_text()) if t.endswith(".md") and "/" not in t]


def anchors(md: Path) -> set[str]:
    """Heading slugs (GitHub style) and explicit <a id="..."> anchors of a Markdown file."""
    text = md.read_text()
    ids = set(re.findall(r'<a\s+(?:id|name)="([^"]+)"', text))
    for line in text.splitlines():
        m = re.match(r"#+\s+(.*)", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            ids.add(slug)
    return ids


def test_the_index_names_every_proof_and_each_exists():
    named = index_links()
    for name in ["lemmas"] + CONSTRUCTIONS + OTHERS:
        assert f"{name}.md" in named, f"proofs/README.md does not list {name}.md"
    missing = [n for n in named if not (PROOFS / n).is_file()]
    assert not missing, f"proofs/README.md names files that do not exist: {missing}"


@pytest.mark.parametrize("md", sorted(p.name for p in PROOFS.glob("*.md")))
def test_links_resolve(md):
    path = PROOFS / md
    bad = []
    for target in LINK.findall(path.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a URL, or an anchor in this file
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve()
        if not dest.exists():
            bad.append(target)
        elif anchor and dest.suffix == ".md" and dest.parent == PROOFS and anchor not in anchors(dest):
            bad.append(target)
    assert not bad, f"{md} links to missing files or anchors: {bad}"


def test_lemmas_have_the_names_the_proofs_cite():
    ids = anchors(PROOFS / "lemmas.md")
    for letter in "EHMSWNLCP":
        assert f"lemma-{letter.lower()}" in ids


# Size formulas, each as its proof states it (proofs/<name>.md, section "Size"): (layers, heads, d_model,
# d_mlp, d_head) as functions of the params n and bits (B), and the param values to check them at.
SIZES = {
    "parity_count": (lambda n, B: (2, 1, n + 7, 2 * n + 1, 3),
                     [{"n": 8}, {"n": 32}, {"n": 100}]),
    "parity_cc": (lambda n, B: (2, 2, 11, 6, 2),
                  [{"n": 2}, {"n": 64}, {"n": 100}]),
    "parity_cot": (lambda n, B: (1, 1, 2 * B + 9, 6, B + 1),
                   [{"n": 16, "bits": 7}, {"n": 16, "bits": 9}, {"n": 100, "bits": 9}]),
    "add_lsb": (lambda n, B: (4, 4, 9 * B + 18, 4 * B + 38, max(B + 1, 6)),
                [{"n": 8, "bits": 7}, {"n": 30, "bits": 8}, {"n": 100, "bits": 12}]),
    "add_msb": (lambda n, B: (2, 2, 2 * B + 2 * n + 35, 443, max(11, B + 1, 2 * n + 7)),
                [{"n": 2, "bits": 5}, {"n": 8, "bits": 7}, {"n": 30, "bits": 8}]),
    "add_cot": (lambda n, B: (2, 4, 5 * B + 67, 870, max(11, B + 1)),
                [{"n": 2, "bits": 5}, {"n": 8, "bits": 7}, {"n": 30, "bits": 9}]),
}


@pytest.mark.parametrize("name", CONSTRUCTIONS)
def test_size_formula_matches_the_compiler(name):
    formula, params = SIZES[name]
    for p in params:
        s = hardwire.compile_file(str(ROOT / "programs" / f"{name}.hw"), params=p, device="cpu").summary()
        got = (s["layers"], s["heads"], s["d_model"], s["d_mlp"], s["d_head"])
        want = formula(p["n"], p.get("bits"))
        assert got == want, f"{name} {p}: compiled (layers, heads, d_model, d_mlp, d_head) {got}, proof says {want}"


@pytest.mark.parametrize("name", CONSTRUCTIONS)
def test_size_formula_matches_the_measured_sizes(name):
    """The sweep's sizes at its longest length (bench/results/lengths.json) fit the same formula."""
    runs = {c["program"]: c for c in json.loads((ROOT / "bench/results/lengths.json").read_text())["constructions"]}
    run = runs[name]
    n = run["at_length"]
    span = 3 if name == "add_cot" else 2
    bits = max((span * n + 2).bit_length() + 1, 6)  # as hardwire/bench/sweep.py picks the word width
    layers, heads, d_model, d_mlp, _ = SIZES[name][0](n, bits)
    assert (run["layers"], run["heads"], run["d_model"], run["d_mlp"]) == (layers, heads, d_model, d_mlp)


@pytest.mark.parametrize("name", CONSTRUCTIONS)
def test_proof_quotes_the_measured_limit(name):
    """Each proof states the longest exact length measured in float32 (bench/results/lengths.json)."""
    runs = {c["program"]: c for c in json.loads((ROOT / "bench/results/lengths.json").read_text())["constructions"]}
    limit = runs[name]["max_exact_length"]["float32"]
    text = (PROOFS / f"{name}.md").read_text()
    assert str(limit) in text or f"{limit:,}" in text or f"{limit:,}".replace(",", "{,}") in text
