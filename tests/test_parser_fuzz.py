"""Fuzzing the front end: text from the grammar itself, random text, and mutations of the programs in programs/.

The property: checking and compiling any text either succeeds or raises HardwireError, never anything else; a
HardwireError names the file, and a line and column inside the text, unless it is about the program as a
whole (no output at all) or names its offending value (the size over --max-params). Compiles run under a
parameter budget, so a mutation that asks for a huge model is refused before its weights are allocated.

Crashes the fuzzers found whose fixes belong outside this change (compiler/check/elaborate.py, wire.py, wire_words.py)
were listed in KNOWN_CRASHES and tolerated by the property; all are fixed now and kept in FIXED_CRASHES,
checked by test_fixed_crash_is_a_hardwire_error. A new crash goes into KNOWN_CRASHES until it is fixed.
"""
from __future__ import annotations

import re
import traceback
from pathlib import Path
from typing import NamedTuple

import pytest
from hardwire.compiler.check.elaborate import check_source, parser
from hardwire.compiler.core.errors import HardwireError
from hardwire.compiler.pipeline import compile_program
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"
FILE = "fuzz.hw"
BUDGET = 200_000  # parameters: big enough for most mutants, small enough that none takes long
HEADER = "program f\nvocab {1, 2, 3}\nmax_len 5\n"
KEYWORDS = ("program", "vocab", "max_len", "causal", "distinct", "param", "output", "table", "or", "and", "not",
            "true", "false", "in", "generate", "stop", "state", "loop", "until", "emit", "when", "if", "then", "def",
            "else", "word")
FUNCTIONS = ("map", "select", "aggregate", "width", "scalar", "onehot", "latest", "earliest", "default", "min",
             "max", "abs", "word")
NAMES = ("tokens", "indices", "length", "x", "y", "k", "t") + FUNCTIONS
# errors about the program as a whole, or naming their value instead of a place
NO_PLACE = re.compile(r"the program has no `output name = \.\.\.` line|would have \d+ parameters")


class Crash(NamedTuple):
    """A known crash: what escapes (type, innermost function and message, as patterns), why, and a small program."""
    name: str
    kind: type
    where: str
    pattern: str
    reason: str
    program: str


# crashes the fuzzers found, each fixed in the checker: kept as regressions (test_fixed_crash_is_a_hardwire_error)
FIXED_CRASHES = [
    Crash("min-max-abs-on-constants", TypeError, "call",
          r"abs\(\)|min expected|max expected|not iterable|not supported between|bad operand",
          "elaborate.call folds min/max/abs over constants with no arity or type check",
          HEADER + 'output y = tokens + min("a", 1)\n'),
    Crash("abs-without-argument", TypeError, "call", r"abs\(\)", "elaborate.call: abs() with no argument",
          HEADER + "output y = abs()\n"),
    Crash("aggregate-of-a-table", TypeError, "aggregate", r"unhashable type: 'Table'",
          "elaborate.aggregate hashes a table as a value",
          HEADER + "table t { 1 -> 2 }\noutput y = aggregate(select(indices, indices, ==), t)\n"),
    Crash("long-expression", RecursionError, "", "",
          "elaborate.expr recurses once per operator: ~1000 chained terms overflow the stack",
          HEADER + "output y = tokens" + " + 1" * 1000 + "\n"),
    Crash("huge-integer-literal", ValueError, "literal", "Exceeds the limit",
          "elaborate.literal calls int() on an INT token: past 4300 digits Python refuses",
          HEADER + "output y = tokens + " + "9" * 5000 + "\n"),
    Crash("divide-a-string", ValueError, "__new__", "Invalid literal for Fraction",
          "elaborate.apply catches ZeroDivisionError and TypeError from `/` on constants, not ValueError",
          HEADER + 'output y = tokens + ("a" / 2)\n'),
    Crash("lambda-returns-outer-value", ValueError, "write|out_write", "not in tuple",
          "a map's lambda that returns an outer value (tokens) gets a value set of SOps; wire.write then fails",
          HEADER + "output y = map(x -> tokens, tokens)\n"),
    Crash("lambda-computes-with-outer-value", TypeError, "sort_values", r"not supported between instances of '[A-Z]",
          "a map's lambda that computes with an outer value: its values are SOps, which do not sort",
          HEADER + "output y = map(x -> x + tokens, tokens)\n"),
    Crash("length-in-the-header", KeyError, "length", "indices",
          "elaborate.length builds `length` from `indices`, which a header line (max_len, word) cannot see yet",
          "program f\nvocab {1}\nmax_len length\noutput y = tokens\n"),
    Crash("word-select-against-constant", KeyError, "word_score_columns", "",
          "a select of a word against a constant: wire_words.word_score_columns finds no dims for the constant",
          "program w\nvocab {1, 2}\nmax_len 4\nword 8\npos = word(indices)\n"
          "output y = aggregate(select(pos, 3, ==), pos)\n"),
]
KNOWN_CRASHES: list[Crash] = []  # crashes still open, tolerated by the properties (none today)
# small programs whose mutants compile fast (the looped machines and the big generators are left out)
SOURCES = {p.name: p.read_text() for p in sorted(PROGRAMS.glob("*.hw"))
           if p.name not in ("subleq.hw", "turing_cot.hw", "turing_loop.hw", "add_cot.hw", "add_msb.hw")}
TOKEN = re.compile(r'"[^"\n]*"|\w+|:=|->|==|!=|<=|>=|//|\s+|.', re.S)


def known_crash(e: BaseException) -> bool:
    frame = traceback.extract_tb(e.__traceback__)[-1].name if e.__traceback__ else ""
    return any(isinstance(e, c.kind) and re.fullmatch(c.where or ".*", frame) and re.search(c.pattern, str(e))
               for c in KNOWN_CRASHES)


def compiles(text: str, tolerate_known: bool = True) -> bool:
    """The property: True if text checks and compiles, False on a well-formed HardwireError (or a known crash,
    when tolerated); anything else (another exception, or an error with no place in the text) fails the test."""
    try:
        compile_program(check_source(text, FILE), max_params=BUDGET)
        return True
    except HardwireError as e:
        assert e.file == FILE, e
        if e.line is None or e.column is None:
            assert NO_PLACE.search(e.message), f"no line:column in {e}"
        else:
            assert 1 <= e.line <= text.count("\n") + 1 and e.column >= 1, f"{e} is outside the text"
        return False
    except Exception as e:  # the property: nothing else escapes
        if tolerate_known and known_crash(e):
            return False
        raise


# ---- 1. the grammar itself ---------------------------------------------------------------------------------
def grammar_text(start: str) -> st.SearchStrategy[str]:
    """Sentences of the grammar from `start`, every terminal padded with spaces so keywords stay apart.

    NAME's regex has a lookahead that hypothesis cannot generate from, so names, integers and strings come from
    small pools that the checker knows (builtins, functions) or can misuse.
    """
    lark_parser = parser()
    terminals, rules, ignored = lark_parser.grammar.compile([start], ())
    used = {t.name for r in rules for t in r.expansion} | set(ignored)
    pad = lambda s: f" {s} "
    explicit = {}
    for t in terminals:
        if t.name not in used:
            continue
        if t.name == "NAME":
            explicit[t.name] = st.sampled_from(NAMES).map(pad)
        elif t.name == "INT":
            explicit[t.name] = st.integers(0, 12).map(pad)
        elif t.name == "STRING":
            explicit[t.name] = st.sampled_from(['"a"', '"b"', '""']).map(pad)
        elif t.name in ("WS", "COMMENT"):
            explicit[t.name] = st.sampled_from(["\n", " ", "# note\n"])
        elif t.pattern.type == "str":
            explicit[t.name] = st.just(pad(t.pattern.value))
        else:
            explicit[t.name] = st.from_regex(t.pattern.to_regexp(), fullmatch=True).map(pad)
    return from_lark(lark_parser, start=start, explicit=explicit)


def fuzz(examples: int) -> settings:
    """The profile's settings (derandomized in CI) with this test's example count; no deadline."""
    return settings(max_examples=examples, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@fuzz(100)
@given(grammar_text("start"))
def test_any_sentence_of_the_grammar(text):
    compiles(text)


@fuzz(100)
@given(st.lists(grammar_text("stmt"), min_size=1, max_size=4), st.sampled_from(("x", "y", "k", "t", "tokens")))
def test_statements_after_a_valid_header(stmts, name):
    """A valid header, random statements, then an output of one of the names they may define: this reaches the
    checker and the wiring. (Sentences from the `expr` rule itself are slow to draw, so none are drawn here.)"""
    compiles(HEADER + "\n".join(stmts) + f"\noutput out = {name}\n")


@st.composite
def headers(draw) -> str:
    """A valid header: a small vocabulary of integers or strings, a short max_len, maybe causal or distinct."""
    vocab = draw(st.sampled_from(["{0, 1, 2}", "{1, 2, 3, 4}", '{"a", "b", "c"}', '{0, "x"}', "{true, false}"]))
    flags = draw(st.sets(st.sampled_from(["causal", "distinct"])))
    return f"program g\nvocab {vocab}\nmax_len {draw(st.integers(1, 6))}\n" + "".join(f"{f}\n" for f in flags)


def values(names: tuple[str, ...]) -> st.SearchStrategy[str]:
    """Expressions in the language over tokens, indices, length, literals and `names`: well-formed in
    syntax, often ill-typed, so they exercise the checker's and the wiring's refusals."""
    leaves = st.sampled_from(("tokens", "indices", "length", "0", "1", "2", '"a"', "true", "x") + names)
    preds = st.sampled_from(("==", "!=", "<", "<=", ">", ">=", "true", "false"))

    def grow(sub):
        sel = st.builds(lambda a, b, p: f"select({a}, {b}, {p})", sub, sub, preds)
        sels = st.one_of(sel, st.builds(lambda a, b, o: f"{a} {o} {b}", sel, sel, st.sampled_from("&|")),
                         sel.map(lambda a: f"!{a}"))
        return st.one_of(
            st.builds(lambda a, b, o: f"({a} {o} {b})", sub, sub,
                      st.sampled_from(("+", "-", "*", "/", "//", "%", "==", "<", "and", "or"))),
            sub.map(lambda a: f"-{a}"), sub.map(lambda a: f"not {a}"),
            st.builds(lambda c, a, b: f"(if {c} then {a} else {b})", sub, sub, sub),
            st.builds(lambda s, a: f"aggregate({s}, {a})", sels, sub), sels.map(lambda s: f"width({s})"),
            st.builds(lambda s, a, f: f"{f}({s}, {a})", sels, sub, st.sampled_from(("latest", "earliest"))),
            st.builds(lambda a, b: f"map(x -> {a}, {b})", sub, sub),
            st.builds(lambda a, b, c: f"map((x, y) -> {a}, {b}, {c})", sub, sub, sub),
            st.builds(lambda f, a: f"{f}({a})", st.sampled_from(("scalar", "onehot", "abs", "word")), sub),
            st.builds(lambda f, a, b: f"{f}({a}, {b})", st.sampled_from(("min", "max", "default")), sub, sub),
        )
    return st.recursive(leaves, grow, max_leaves=8)


@fuzz(150)
@given(headers(), values(()), values(("a",)), values(("a", "b")))
def test_generated_expressions(header, a, b, out):
    """Programs built from the language's constructs: definitions a and b, then an output over them."""
    compiles(f"{header}a = {a}\nb = {b}\noutput out = {out}\n")


# ---- 2. random text ----------------------------------------------------------------------------------------
GRAMMAR_CHARS = "abcxyz_019 \n\t{}()[],=<>!&|+-*/%#\"':."
TOKENS = sorted(set(KEYWORDS + NAMES + ("{", "}", "(", ")", "[", "]", ",", "=", ":=", "->", "==", "<", "!", "&", "|",
                                        "+", "-", "*", "//", "/", "%", "0", "1", "7", '"a"', "\n")))


@fuzz(150)
@given(st.one_of(
    st.text(st.sampled_from(GRAMMAR_CHARS), max_size=120),
    st.text(max_size=60),  # any unicode, NUL and surrogate-free
    st.lists(st.sampled_from(TOKENS), max_size=40).map(" ".join),
    st.lists(st.sampled_from(TOKENS), max_size=30).map(lambda ts: HEADER + " ".join(ts)),
))
def test_random_text(text):
    compiles(text)


# ---- 3. mutations of the programs in programs/ -------------------------------------------------------------
@st.composite
def mutants(draw) -> str:
    """A program from programs/ with 1 to 4 character or token edits: delete, insert, swap, replace."""
    text = SOURCES[draw(st.sampled_from(sorted(SOURCES)))]
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):  # characters
            chars = list(text)
            i = draw(st.integers(0, max(len(chars) - 1, 0)))
            op = draw(st.sampled_from(["delete", "insert", "swap", "replace"]))
            c = draw(st.sampled_from(GRAMMAR_CHARS))
            if op == "delete" and chars:
                del chars[i]
            elif op == "insert":
                chars.insert(i, c)
            elif op == "swap" and i + 1 < len(chars):
                chars[i], chars[i + 1] = chars[i + 1], chars[i]
            elif chars:
                chars[i] = c
            text = "".join(chars)
        else:  # tokens
            toks = TOKEN.findall(text)
            i = draw(st.integers(0, max(len(toks) - 1, 0)))
            op = draw(st.sampled_from(["delete", "duplicate", "swap", "replace", "insert"]))
            new = draw(st.sampled_from(TOKENS + sorted(set(toks))))
            if op == "delete" and toks:
                del toks[i]
            elif op == "duplicate" and toks:
                toks.insert(i, toks[i])
            elif op == "swap" and toks:
                j = draw(st.integers(0, len(toks) - 1))
                toks[i], toks[j] = toks[j], toks[i]
            elif op == "replace" and toks:
                toks[i] = new
            else:
                toks.insert(i, f" {new} ")
            text = "".join(toks)
    return text


@fuzz(200)
@given(mutants())
def test_mutated_programs(text):
    compiles(text)


def test_every_source_compiles_unmutated():
    """The mutation sources are valid programs within the budget, so a mutant's failure is the mutation's."""
    assert len(SOURCES) >= 8
    for name, text in SOURCES.items():
        assert compiles(text), name


@pytest.mark.parametrize("crash", [pytest.param(c, id=c.name) for c in FIXED_CRASHES])
def test_fixed_crash_is_a_hardwire_error(crash):
    """Each crash the fuzzers once found: the program now compiles or is refused with a HardwireError (with a place)."""
    compiles(crash.program, tolerate_known=False)
