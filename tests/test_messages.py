"""Messages in the user's words (issue 22): each mistake gets its own message, with the place, the source line and
a caret, and a suggestion when a name is close; no message shows grammar terminals, internal names or Python.

Also here, from issue 17: selector combinations that one head computes now compile (and equal the interpreter),
a `|` across keys is refused only over its pair budget (issue 19), `default` inside a lambda says what to write, and
a UTF-8 byte-order mark is skipped.
"""
from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from hardwire.compiler.check.elaborate import check_file, check_source, parser
from hardwire.compiler.core.errors import HardwireError
from hardwire.compiler.interpret import run
from hardwire.compiler.pipeline import compile_program
from hardwire.runtime.model import from_compiled
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardwire.cli.main import main

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"
STR = 'program p\nvocab {"a", "b", "c"}\nmax_len 5\n'
INT = "program p\nvocab {1, 2, 3}\nmax_len 5\n"
WIDE = "program p\nvocab {1, 2, 3}\nmax_len 300\n"  # a `|` across indices and tokens is over the pair budget
BUDGET = 200_000
# what no message may show: the grammar's terminal names, Python's exception names and texts, internal labels
TERMINALS = sorted({t.name for t in parser().terminals} | {"$END", "__ANON"}, key=len, reverse=True)
LEAKS = re.compile(r"\b(" + "|".join(re.escape(t) for t in TERMINALS if not t.startswith("$")) + r")\b|\$END|"
                   r"Traceback|[A-Z][a-z]+Error\b|Exception|NoneType|Fraction\(|not supported between|"
                   r"unsupported operand|can only concatenate|object has no attribute|invalid literal|"
                   r"\bNone\b|\bidentity\b|\b_(word|width|aggregate|latest|earliest|copy)\b")


def refusal(src: str, file: str = "t.hw") -> HardwireError:
    """The error that checking and compiling src raise (the test fails if it compiles)."""
    prog = None
    with pytest.raises(HardwireError) as e:
        prog = check_source(src, file, strict=True)  # strict: the literal checks are errors, not warnings
        compile_program(prog, max_params=BUDGET)
    if prog is not None and e.value.source_line is None:  # found while wiring: the CLI reads the line from the file
        e.value.source_line = src.split("\n")[e.value.line - 1]
    return e.value


def caret_column(err: HardwireError) -> int:
    """The column the excerpt's caret points at (1-based, tabs counted as one column, as lark counts them)."""
    source, caret = err.excerpt().split("\n")
    assert source == "  " + err.source_line
    return len(caret) - 2


# (name, program, line, column, words the message must contain)
CASES = [
    ("misspelt-function", STR + "output o = width(slect(tokens, tokens, ==))\n", 4, 18,
     ["'slect' is not a function", "did you mean select?"]),
    ("misspelt-keyword", STR + "outptu o = tokens\n", 4, 1,
     ["`outptu` is not a keyword", "did you mean output?"]),
    ("misspelt-max_len", "program p\nvocab {1}\nmaxlen 4\noutput o = tokens\n", 3, 1,
     ["`maxlen` is not a keyword", "did you mean max_len?"]),
    ("slash-comment-line", STR + "// the tokens, as they are\noutput o = tokens\n", 4, 1,
     ["comments start with `#`, not `//`"]),
    ("slash-comment-after-code", STR + "output o = tokens // the tokens\n", 4, 19,
     ["comments start with `#`, not `//`"]),
    ("equals-for-compare", INT + "output o = if tokens = 1 then 1 else 2\n", 4, 22,
     ["expected an operator such as + or == or `then`, found `=`", "`==` compares"]),
    ("equals-as-predicate", STR + "output o = width(select(tokens, tokens, =))\n", 4, 41,
     ["expected a value or a comparison such as == or <, found `=`", "`==` compares"]),
    ("operator-without-operand", INT + "output o = tokens + * 2\n", 4, 21,
     ["syntax error: expected a value, found `*`"]),
    ("unclosed-paren", INT + "output o = (tokens + 1\noutput p = tokens\n", 5, 1,
     ["syntax error: expected `,` or `)`, found the keyword `output`"]),
    ("single-quotes", INT + "output o = tokens == 'a'\n", 4, 22, ["strings are written in double quotes"]),
    ("missing-max_len", "program p\nvocab {1}\noutput o = tokens\n", 1, 1,
     ["no `max_len N` line", "e.g. `max_len 16`"]),
    ("unknown-name", INT + "output o = tokenz\n", 4, 12, ["unknown name 'tokenz'; did you mean tokens?"]),
    ("string-plus-number", STR + "output o = tokens + 1\n", 4, 12,
     ['`tokens + 1` fails where tokens is "a": + needs two numbers (or two strings), not "a" (a string) and 1 '
      "(a number)"]),
    ("scalar-of-strings", STR + "output o = scalar(tokens)\n", 4, 12,
     ['scalar encoding needs numbers, but `scalar(tokens)` can be "a" (a string)']),
    ("divide-by-zero", INT + "output o = tokens / (indices - indices)\n", 4, 12, ["it divides by zero"]),
    ("literal-not-in-vocab", STR + 'output o = width(select(tokens, "e", ==))\n', 4, 18,
     ['`select(tokens, "e", ==)` never selects a key: "e" is not a value of tokens ("a", "b", "c")']),
    ("number-against-strings", STR + "output o = width(select(tokens, 1, ==))\n", 4, 18,
     ['`select(tokens, 1, ==)` never selects a key: 1 is a number, but tokens holds strings ("a", "b", "c")']),
    ("compare-with-absent-literal", STR + 'output o = tokens == "e"\n', 4, 12,
     ['`tokens == "e"` is always false: "e" is not a value of tokens']),
    ("default-in-a-lambda",
     INT + "n = aggregate(select(indices, 0, ==), tokens)\noutput o = map(a -> default(a, 0), n)\n", 5, 21,
     ["default(a, 0) inside a lambda does nothing", "map(a -> ..., default(n, 0))", "default(map(...), 0)"]),
    ("index-a-number", INT + "output o = tokens[0]\n", 4, 12,
     ["`tokens[0]` fails where tokens is 1: 1 is a number, not a tuple with a component [0]"]),
    ("index-past-the-end", INT + "t = (tokens, 1)\noutput o = map(x -> x[3], t)\n", 5, 21,
     ["`x[3]` cannot be computed: (1, 1) has 2 components, so no component [3]"]),
    ("double-equals-definition", INT + "output o == tokens\n", 4, 11, ["a definition takes one `=`"]),
    ("fat-arrow-lambda", INT + "output o = map(x => x + 1, tokens)\n", 4, 18, ["a lambda is written x -> ..."]),
    ("python-lambda", INT + "output o = map(lambda x: x, tokens)\n", 4, 23, ["with no `lambda`"]),
    ("doubled-ampersand", INT + "output o = tokens && 1\n", 4, 20, ["write `&` once (or `and`)"]),
    ("semicolon", INT + "output o = tokens;\n", 4, 18, ["with no `;`"]),
    ("method-call", INT + "output o = tokens.count\n", 4, 18, ["values have no methods or fields"]),
    ("def-keyword", INT + "def f(x) = x\n", 4, 1, ["`def` is not a keyword: a definition is `name = expression`"]),
    ("unknown-predicate", INT + "output o = width(select(tokens, tokens, eq))\n", 4, 41,
     ["select's third argument is a predicate, one of == != < <= > >= true false, not eq"]),
    ("predicate-outside-select", INT + "output o = width(==)\n", 4, 18,
     ["the comparison == alone is a predicate, which only select takes"]),
    ("or-over-budget", WIDE + "output o = width(select(indices, indices, ==) | select(tokens, tokens, <))\n", 4, 18,
     ["`|` between selects on different keys or queries", "indices (300 values) x tokens (3 values) = 900 values",
      "810,000 pairs, over the budget of 200,000"]),
    ("predicate-not-boolean", INT + "output o = width(select(tokens, tokens, (k, q) -> k + q))\n", 4, 51,
     ["a select's predicate must be true or false, but `k + q` is 2 where the key k is 1 and the query q is 1"]),
    ("predicate-three-parameters", INT + "output o = width(select(tokens, tokens, (a, b, c) -> a == b))\n", 4, 41,
     ["a select's predicate takes two parameters, the key then the query, not 3"]),
    ("predicate-reads-a-sequence", INT + "output o = width(select(tokens, tokens, (k, q) -> k == indices))\n",
     4, 51, ["it cannot read a sequence"]),
    ("predicate-table-over-budget", "program p\nvocab {1}\nmax_len 1000\n"
     "output o = width(select(indices, indices, (k, q) -> k < q))\n", 4, 18,
     ["a table over 1,000 key values x 1,000 query values = 1,000,000 pairs, over the budget of 200,000"]),
    ("predicate-on-words", "program p\nword 8\nvocab word\nmax_len 4\n"
     "output o = width(select(tokens, tokens, (a, b) -> a < b))\n", 5, 18,
     ["a select on words compares them with == only"]),
]


@pytest.mark.parametrize("name,src,line,column,words", CASES, ids=[c[0] for c in CASES])
def test_message(name, src, line, column, words):
    err = refusal(src)
    assert (err.file, err.line, err.column) == ("t.hw", line, column), str(err)
    for w in words:
        assert w in err.message, err.message
    assert not LEAKS.search(err.message), err.message
    assert caret_column(err) == column
    assert err.source_line == src.split("\n")[line - 1]


def test_caret_lines_up_under_tabs():
    """Tabs are whitespace like spaces; the caret's prefix keeps them, so it sits under the column in a terminal."""
    err = refusal(INT + "output o =\t\ttokens + * 2\n")
    source, caret = err.excerpt().split("\n")
    assert caret == "  " + "".join("\t" if c == "\t" else " " for c in err.source_line[:err.column - 1]) + "^"
    assert err.source_line[err.column - 1] == "*"
    assert check_source(INT + "output\to\t=\ttokens\n").outputs  # tabs separate tokens like spaces


def test_cli_prints_the_line_and_caret_at_a_terminal_only(tmp_path, capsys, monkeypatch):
    """Logs and pipes get the one line (the CLI's contract); a person at a terminal also gets the line and caret."""
    bad = tmp_path / "bad.hw"
    bad.write_text(INT + "output o = tokenz + 1\n")
    args = ["compile", str(bad), "-o", str(tmp_path / "o.safetensors")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err == f"hardwire: error: {bad}:4:12: unknown name 'tokenz'; did you mean tokens? (defined so far: " \
                  "indices, tokens)\n"
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    assert main(args) == 2
    lines = capsys.readouterr().err.split("\n")
    assert lines[1:] == ["  output o = tokenz + 1", "  " + " " * 11 + "^", ""]
    assert not (tmp_path / "o.safetensors").exists()


def test_compile_error_gets_its_line_from_the_file(tmp_path, capsys, monkeypatch):
    """An error found while wiring (after checking) reads its source line from the program file."""
    bad = tmp_path / "mix.hw"
    bad.write_text(WIDE + "output o = width(select(indices, indices, ==) | select(tokens, tokens, <))\n")
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    assert main(["compile", str(bad), "-o", str(tmp_path / "o.safetensors")]) == 2
    lines = capsys.readouterr().err.split("\n")
    assert "4:18: this selector has `|`" in lines[0]
    assert lines[1:3] == ["  output o = width(select(indices, indices, ==) | select(tokens, tokens, <))",
                          "  " + " " * 17 + "^"]


# ---- selector combinations (issue 17) ------------------------------------------------------------------------
SELECTORS = [
    "(select(t, t, ==) | select(t, t, <)) & select(indices, indices, !=)",   # the issue's example
    "!(select(t, t, ==) | select(indices, indices, <))",                      # De Morgan: !a & !b
    "!!(select(t, t, ==) | select(t, t, <)) & select(indices, indices, <=)",
    "select(indices, indices, <) & (select(t, t, !=) | !select(t, t, <))",
    "!(select(t, t, ==) | select(t, t, >)) & !select(indices, indices, ==)",
]


@pytest.mark.parametrize("sel", SELECTORS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_selector_combinations_compile_and_match_the_interpreter(sel, data):
    """`&` joins any selects; a `|` (or `!`) inside it over one shared key and query is one term of the head."""
    prog, model = compiled_selector(sel)
    xs = data.draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=6))
    assert model.run([xs]) == [run(prog, xs)]


_BUILT: dict = {}


def compiled_selector(sel: str):
    if sel not in _BUILT:
        prog = check_source(STR.replace("max_len 5", "max_len 6") + f"t = tokens\ns = {sel}\n"
                            "output w = width(s)\noutput m = aggregate(s, scalar(indices))\n", "s.hw")
        _BUILT[sel] = prog, from_compiled(compile_program(prog), "cpu")
    return _BUILT[sel]


def test_or_across_keys_inside_a_negated_and_is_refused_precisely():
    """`!(a & b)` is `!a | !b`: combined like a `|` (tests/test_select_predicates.py), so refused only over the
    pair budget, at the `!`."""
    err = refusal(WIDE + "output o = width(!(select(indices, indices, ==) & select(tokens, tokens, <)))\n")
    assert (err.line, err.column) == (4, 18)
    assert "`!(a & b)` is `!a | !b`" in err.message and "810,000 pairs" in err.message


# ---- byte-order mark ------------------------------------------------------------------------------------------
def test_byte_order_mark_is_skipped(tmp_path):
    text = (PROGRAMS / "reverse.hw").read_text()
    path = tmp_path / "bom.hw"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    with_bom, plain = check_file(str(path)), check_source(text, str(path))
    assert with_bom.name == plain.name and list(with_bom.outputs) == list(plain.outputs)
    xs = ["a", "b", "c"]
    assert run(with_bom, xs) == run(plain, xs) == {"reversed": ["c", "b", "a"]}


def test_literal_check_is_a_warning_unless_strict(tmp_path, capsys):
    """Without --strict a comparison that can never match compiles, with a warning line on stderr; with --strict it
    is refused (exit 2, no file)."""
    src = STR + 'output o = width(select(tokens, "e", ==))\n'
    [w] = check_source(src, "t.hw").warnings
    assert str(w) == 't.hw:4:18: `select(tokens, "e", ==)` never selects a key: "e" is not a value of tokens ' \
                     '("a", "b", "c")'
    prog = tmp_path / "e.hw"
    prog.write_text(src)
    out = tmp_path / "e.safetensors"
    assert main(["compile", str(prog), "-o", str(out), "--json"]) == 0 and out.exists()
    captured = capsys.readouterr()
    assert captured.err == f"hardwire: warning: {prog}:4:18: `select(tokens, \"e\", ==)` never selects a key: " \
                           '"e" is not a value of tokens ("a", "b", "c") (--strict makes this an error)\n'
    out.unlink()
    assert main(["compile", str(prog), "-o", str(out), "--strict"]) == 2 and not out.exists()
    assert capsys.readouterr().err == f"hardwire: error: {prog}:4:18: `select(tokens, \"e\", ==)` never selects a " \
                                      'key: "e" is not a value of tokens ("a", "b", "c")\n'
    assert main(["check", str(prog), "--samples", "5", "--strict", "--device", "cpu"]) == 2


def test_valid_comparisons_with_literals_still_compile():
    """The literal check refuses only a comparison that is the same at every position."""
    for out in ['width(select(tokens, "a", ==))', 'width(select(tokens, "e", <))', 'tokens == "a"',
                'width(select(tokens, "a", !=))', "width(select(indices, 2, <))"]:
        assert check_source(STR + f"output o = {out}\n", strict=True).outputs


# ---- the property: single-character edits of every program -------------------------------------------------------
SOURCES = {p.name: p.read_text() for p in sorted(PROGRAMS.glob("*.hw"))}
EDIT_CHARS = "abtxz_01 \n\t{}()[],=<>!&|+-*/%#\"'.:"


@st.composite
def edited(draw) -> tuple[str, str]:
    """A program of programs/ with one character deleted, inserted, replaced or swapped with the next."""
    name = draw(st.sampled_from(sorted(SOURCES)))
    text = SOURCES[name]
    i = draw(st.integers(0, len(text) - 1))
    c = draw(st.sampled_from(EDIT_CHARS))
    op = draw(st.sampled_from(["delete", "insert", "replace", "swap"]))
    if op == "delete":
        text = text[:i] + text[i + 1:]
    elif op == "insert":
        text = text[:i] + c + text[i:]
    elif op == "replace":
        text = text[:i] + c + text[i + 1:]
    else:
        text = text[:i] + text[i + 1:i + 2] + text[i] + text[i + 2:]
    return name, text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edited())
def test_single_character_edits_compile_or_explain_themselves(case):
    name, text = case
    try:
        compile_program(check_source(text, name), max_params=BUDGET)
    except HardwireError as e:
        # a name the user wrote may be echoed back, even one that looks internal (`_word` typed for `word`)
        written = set(re.findall(r"[A-Za-z_]\w*", text))
        found = [m.group(0) for m in LEAKS.finditer(e.message) if m.group(0).strip("'`") not in written]
        assert not found, f"{name}: {e}"
        assert "\n" not in str(e), f"{name}: {e}"


@pytest.mark.slow
@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edited())
def test_single_character_edits_compile_or_explain_themselves_long(case):
    test_single_character_edits_compile_or_explain_themselves.hypothesis.inner_test(case)


def test_leak_pattern_catches_what_it_should():
    """The property's pattern: a sanity check that it sees terminals, Python and internal names."""
    for leak in ["expected one of ADDOP, CMP", "found EQUAL", "can only concatenate str", "TypeError: x",
                 "but identity can be", "Fraction(1, 0)", "_width is"]:
        assert LEAKS.search(leak), leak
    for fine in ["syntax error: expected a value, found `*`", "an MLP over several scalar inputs",
                 "file is not UTF-8 text (byte 0xff)", "a 16-bit word"]:
        assert not LEAKS.search(fine), fine


def test_random_inputs_agree_for_the_issue_selector():
    """The issue 17 selector over many random inputs at once (the property above draws them one by one)."""
    prog, model = compiled_selector(SELECTORS[0])
    rng = random.Random(0)
    batch = [[rng.choice("abc") for _ in range(rng.randint(1, 6))] for _ in range(200)]
    assert model.run(batch) == [run(prog, xs) for xs in batch]


def test_every_message_here_is_listed_verbatim_in_docs_errors():
    """docs/errors.md shows each case's message exactly, so the table cannot drift from the checker."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "errors.md").read_text()
    for name, src, *_ in CASES:
        text = str(refusal(src)).replace("|", "\\|")
        assert f"`` {text} `` | 2 | tests/test_messages.py::test_message[{name}] |" in doc, name
