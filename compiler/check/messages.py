"""Messages in the user's words: syntax errors, close-name suggestions, values shown as the language writes them.

The parser's view of a mistake (terminal names like ADDOP or EQUAL, Python exception text) is translated here,
so that elaborate.py and the wiring say what was expected and what was found in the language's own terms.
"""
from __future__ import annotations

import difflib
import re
from fractions import Fraction
from typing import Any

import lark
from hardwire.compiler.check.primitives import ELEMENTWISE
from hardwire.compiler.core.errors import HardwireError

KEYWORDS = ("program", "vocab", "max_len", "causal", "distinct", "exact_len", "param", "require", "word", "output",
            "table", "state", "loop", "until", "emit", "when", "generate", "stop", "in", "if", "then", "else",
            "and", "or", "not", "true", "false", "def", "for")
BUILTINS = ("map", "select", "aggregate", "width", "scalar", "onehot", "latest", "earliest", "word", "default")
COMPILE_TIME = ("any", "all", "sum", "len", "enumerate")  # folds and list helpers: evaluated by the checker


def functions() -> tuple[str, ...]:
    """Every function a program may call: the built-in forms, then the elementwise primitives' table."""
    return (*BUILTINS, *ELEMENTWISE, "layernorm", *COMPILE_TIME)
STATEMENT_STARTS = ("output", "table", "state", "loop", "def", "program", "vocab", "max_len", "causal", "distinct",
                    "exact_len", "generate", "param", "require", "word")

# terminals by what they stand for, to say an expected set in words
VALUE_STARTS = {"NAME", "INT", "STRING", "TRUE", "FALSE", "LPAR", "MINUS", "BANG", "NOT", "IF"}
OPERATORS = {"ADDOP", "MULOP", "CMP", "AMPERSAND", "VBAR", "AND", "OR", "LSQB"}
LINE_STARTS = {"PROGRAM", "VOCAB", "MAX_LEN", "CAUSAL", "DISTINCT", "EXACT_LEN", "GENERATE", "PARAM", "REQUIRE",
               "WORD", "OUTPUT", "TABLE", "STATE", "LOOP", "DEF", "$END"}
PUNCTUATION = {"COMMA": "`,`", "RPAR": "`)`", "LPAR": "`(`", "LBRACE": "`{`", "RBRACE": "`}`", "RSQB": "`]`",
               "LSQB": "`[`", "EQUAL": "`=`", "__ANON_0": "`:=`", "__ANON_1": "`->`", "THEN": "`then`",
               "ELSE": "`else`", "STOP": "`stop`", "IN": "`in`", "UNTIL": "`until`", "WHEN": "`when`",
               "EMIT": "`emit`", "MINUS": "`-`", "DOTS": "`..`", "FOR": "`for`"}


def suggest(word: str, candidates) -> str:
    """' (did you mean X?)' for the closest candidate, or '' when none is close."""
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=1)
    return f"; did you mean {close[0]}?" if close else ""


def shown(v: Any) -> str:
    """A value as the language writes it: "a", 1/3, true, none, (1, "a")."""
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, Fraction):
        return str(v.numerator) if v.denominator == 1 else f"{v.numerator}/{v.denominator}"
    if isinstance(v, tuple) and getattr(v, "brackets", None):  # a compile-time list: [1, 2]
        return "[" + ", ".join(shown(x) for x in v) + "]"
    if isinstance(v, tuple):
        return "(" + ", ".join(shown(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    return str(v)


def kind(v: Any) -> str:
    """What sort of value v is, in words: 'a number', 'a string', ..."""
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, Fraction)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, tuple):
        return "a list" if getattr(v, "brackets", None) else "a tuple"
    return "a value"


def kinds(values) -> set[str]:
    """The sorts of the values that are not none ('numbers', 'strings', ...), for comparing literals with sets."""
    return {kind(v) for v in values if v is not None}


def shown_set(values, most: int = 6) -> str:
    """A value set in words: "a", "b", "c" (and 'and N more' past `most`)."""
    vals = [shown(v) for v in values]
    more = f" and {len(vals) - most} more" if len(vals) > most else ""
    return ", ".join(vals[:most]) + more


def plural(k: str) -> str:
    """'a number' -> 'numbers'."""
    return {"a number": "numbers", "a string": "strings", "a boolean": "booleans", "a tuple": "tuples"}.get(k, k)


OP_WORDS = {"+": "+ needs two numbers (or two strings)", "-": "- needs numbers", "*": "* needs numbers",
            "/": "/ needs numbers", "//": "// needs numbers", "%": "% needs numbers", "neg": "- needs a number",
            "<": "< compares two numbers or two strings", "<=": "<= compares two numbers or two strings",
            ">": "> compares two numbers or two strings", ">=": ">= compares two numbers or two strings",
            "min": "min compares two numbers or two strings", "max": "max compares two numbers or two strings",
            "abs": "abs needs a number"}


def op_failure(op: str, args: tuple, exc: BaseException) -> str:
    """Why an operator failed on these values, in words (never Python's exception text)."""
    if isinstance(exc, ZeroDivisionError):
        return "it divides by zero"
    need = OP_WORDS.get(op, f"{op} does not apply to these values")
    given = " and ".join(f"{shown(a)} ({kind(a)})" for a in args)
    return f"{need}, not {given}"


class OpFailure(ValueError):
    """An operator applied to values it does not take; the message says why in the language's words."""


# ---- syntax errors -----------------------------------------------------------------------------------------
def expected_words(expected: set[str]) -> str:
    """An expected-terminal set as words: 'a value', 'an operator such as + or ==', '`)`', 'the end of the line'."""
    parts: list[str] = []
    if "LSQB" in expected and expected & {"NAME", "INT", "STRING"} and not expected & OPERATORS - {"LSQB", "CMP"}:
        expected = expected - {"LSQB"}  # `[` where a value may start opens a list, not an index
    if expected & VALUE_STARTS - {"MINUS", "LPAR"} or {"MINUS", "LPAR"} <= expected:
        parts.append("a name" if expected & VALUE_STARTS == {"NAME"} else "a value")
    elif "NAME" in expected:
        parts.append("a name")
    if "CMP" in expected and not expected & OPERATORS - {"CMP"}:
        parts.append("a comparison such as == or <")
    elif expected & OPERATORS:
        parts.append("an operator such as + or ==")
    for t, words in PUNCTUATION.items():
        if t in expected and not (t in ("LPAR", "MINUS", "LSQB") and parts and parts[0] == "a value") \
                and not (t in ("LPAR", "LSQB") and expected & OPERATORS - {"LSQB"}):
            parts.append(words)
    if expected & LINE_STARTS:
        parts.append("the end of the line" if parts else "a new line (a header such as `max_len 8`, a definition "
                                                          "`name = ...` or `output name = ...`)")
    if not parts:
        parts.append("something else")
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def found_words(token: lark.Token | None) -> str:
    """The token the parser stopped at, in words."""
    if token is None or token.type == "$END":
        return "the end of the file"
    text = str(token)
    if token.type == "NAME":
        return f"the name `{text}`"
    if token.type == "INT":
        return f"the number `{text}`"
    if token.type == "STRING":
        return f"the string `{text}`"
    if text in KEYWORDS:
        return f"the keyword `{text}`"
    return f"`{text}`"


def line_of(text: str, line: int) -> str:
    lines = text.split("\n")
    return lines[line - 1].rstrip("\r") if 1 <= line <= len(lines) else ""


def comment_hint(text: str, line: int | None, column: int | None) -> str:
    """'; comments start with `#`, not `//`' when the line has a `//` (outside strings) before the column."""
    if line is None:
        return ""
    before = line_of(text, line)[:(column or 1) - 1] if column else line_of(text, line)
    return "; comments start with `#`, not `//`" if "//" in re.sub(r'"[^"]*"', '""', before) else ""


def refuse_slash_comments(text: str, file: str) -> None:
    """A line that starts with `//` is a comment in many languages; here it would divide the line above."""
    for i, raw in enumerate(text.split("\n"), start=1):
        stripped = raw.lstrip()
        if stripped.startswith("//"):
            raise HardwireError("comments start with `#`, not `//` (a line cannot start with `//`; to divide, "
                                "keep `//` on the line of its left operand)", file, i, len(raw) - len(stripped) + 1)


def syntax_error(e: lark.UnexpectedInput, text: str, file: str) -> HardwireError:
    """A parser error as one line: what was expected and what was found, in words, with a hint when the mistake is
    a common one (`=` for `==`, a misspelt keyword, a `//` comment, single quotes)."""
    line, column = e.line, e.column
    if line is None or line < 1:  # the end of the file: lark gives no place
        lines = text.rstrip().split("\n")
        line, column = len(lines), len(lines[-1]) + 1
    if isinstance(e, lark.UnexpectedCharacters):
        char = text[e.pos_in_stream] if e.pos_in_stream is not None and e.pos_in_stream < len(text) else ""
        hint = ""
        if char == "'":
            hint = "; strings are written in double quotes, e.g. \"a\""
        elif char == '"':
            hint = "; a string ends on the line it starts"
        elif char == ";":
            hint = "; a statement ends at the end of its line, with no `;`"
        elif char == ".":
            hint = "; values have no methods or fields: call a function, e.g. width(...), or index a tuple, t[0]"
        shown_char = {"\t": "a tab", "\r": "a carriage return"}.get(char, f"`{char}`" if char.isprintable()
                                                                      else f"the character U+{ord(char):04X}")
        return HardwireError(f"syntax error: unexpected {shown_char}{hint}{comment_hint(text, line, column)}",
                             file, line, column)
    slash = re.sub(r'"[^"]*"', lambda m: " " * len(m.group()), line_of(text, line)[:column - 1]).find("//")
    if slash >= 0:  # `a // rest of a comment` parses as a division until the comment's words run out
        return HardwireError("comments start with `#`, not `//` (here `//` divides by what follows it)", file, line,
                             slash + 1)
    expected = set(getattr(e, "accepts", None) or getattr(e, "expected", None) or [])
    token = getattr(e, "token", None)
    found = found_words(token)
    hint = ""
    before = line_of(text, line)[:column - 1]
    after = line_of(text, line)[column - 1:]
    lone = re.fullmatch(r"\s*([A-Za-z_]\w*)\s*", before)
    if token is not None and after.startswith("=>"):
        hint = "; a lambda is written x -> ..."
    elif re.search(r"\blambda\s*$", before):
        hint = "; a lambda is written x -> ..., with no `lambda`"
    elif token is not None and after[:1] in "&|" and before.rstrip()[-1:] == after[:1]:
        hint = f"; write `{after[0]}` once (or `{'and' if after[0] == '&' else 'or'}`)"
    elif token is not None and token.type == "EQUAL" and before.rstrip().endswith("="):
        hint = "; a definition takes one `=`, and `==` compares"
    elif token is not None and token.type == "EQUAL" and (expected & OPERATORS or "CMP" in expected):
        hint = "; `=` defines a name, and `==` compares"
    elif lone and lone.group(1) in ("let", "var", "val", "const", "fn", "func", "function"):
        return HardwireError(f"syntax error: `{lone.group(1)}` is not a keyword: a definition is `name = expression`, "
                             "with nothing before the name", file, line, before.index(lone.group(1)) + 1)
    elif lone and expected <= {"EQUAL", "__ANON_0"} and expected:
        word = lone.group(1)
        close = suggest(word, STATEMENT_STARTS + ("emit",))
        if close:
            return HardwireError(f"syntax error: `{word}` is not a keyword{close} (a definition is "
                                 "`name = ...`)", file, line, before.index(word) + 1)
        hint = f"; a definition is `{word} = ...`"
    elif token is not None and token.type == "NAME":
        words = [PUNCTUATION[t].strip("`") for t in expected if t in PUNCTUATION] + \
                [t.lower() for t in expected if t.lower() in KEYWORDS]
        hint = suggest(str(token), words)
    return HardwireError(f"syntax error: expected {expected_words(expected)}, found {found}{hint}", file, line, column)


def excerpt_for(e: HardwireError) -> str:
    """The caret excerpt of an error (source line and a caret under the column), reading the line from the named
    file when the checker did not attach it (errors found while compiling); '' when there is no place or file."""
    if e.source_line is None and e.file and e.line is not None and e.column is not None:
        try:
            with open(e.file, "rb") as f:
                raw = f.read(1 << 20)
            e.source_line = line_of(raw.decode("utf-8").removeprefix("\ufeff"), e.line)
        except (OSError, UnicodeDecodeError):
            return ""
    return e.excerpt()


def called(s: Any, what: str = "this value") -> str:
    """A value's name in a message: the user's name for it, or `what` for a value the checker named itself."""
    label = getattr(s, "label", "")
    return label if label and not label.startswith("_") else what
