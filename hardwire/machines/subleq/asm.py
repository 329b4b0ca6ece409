"""A small assembler for SUBLEQ images (semantics in emulator.py).

Syntax, one statement per line:

    A B C        one instruction, three words: mem[B] -= mem[A]; jump to C if the result is <= 0
    A B          the same with C = the address of the next instruction
    out X        sugar for `X -1 ?`: output mem[X]
    halt         sugar for `0 0 -1`: jump to -1, which halts
    .data v ...  literal words: integers, labels, label+k / label-k, or character literals like 'H'
    .string "s"  one word per character (its code point); several strings may follow .string
    name:        defines `name` as the current address; may come before a statement on the same line
    # or ;       start a comment that runs to the end of the line

Operands are decimal (or 0x hex) integers, labels, `label+k` / `label-k` (no spaces inside), character
literals ('a', '\\n', '\\'', '\\\\'), or `?` (also `?+k` / `?-k`), meaning the address of the word right
after this operand. Labels are [A-Za-z_][A-Za-z0-9_]* and may be used before they are defined; to
rewrite an operand at run time, label its instruction and address the word as `label+1` etc.
Every resolved word must fit in the `bits`-bit two's complement range. Example (prints "Hi", halts):

    start:  out H           ; X -1 ?  : output mem[H]
            out I
            halt            ; 0 0 -1  : jump to -1
    H:      .data 'H'
    I:      .data 105       ; 'i'

Errors are HardwireError with file:line:column.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from hardwire.compiler.check.source import read_text
from hardwire.compiler.core.errors import HardwireError
from hardwire.machines.subleq.emulator import word_range

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INT = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F]+|[0-9]+)")
_EXPR = re.compile(r"(?P<base>[A-Za-z_][A-Za-z0-9_]*|\?)(?:(?P<sign>[+-])(?P<off>0[xX][0-9a-fA-F]+|[0-9]+))?")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", "'": "'", '"': '"'}


@dataclass
class _Token:
    text: str
    col: int
    literal: str | None = None  # decoded contents of a quoted token
    quote: str | None = None     # "'" or '"' for quoted tokens


@dataclass
class _Word:
    token: _Token
    line: int
    address: int


class _Assembler:
    """Two passes: lay out words and collect labels, then resolve every operand."""

    def __init__(self, bits: int, file: str):
        self.bits, self.file = bits, file
        self.labels: dict[str, tuple[int, int]] = {}  # name -> (address, line)
        self.words: list[_Word] = []

    def error(self, message: str, line: int, col: int) -> HardwireError:
        return HardwireError(message, self.file, line, col)

    def define(self, name: str, line: int, col: int) -> None:
        if not _NAME.fullmatch(name):
            raise self.error(f"bad label name '{name}'", line, col)
        if name in self.labels:
            raise self.error(f"label '{name}' defined twice (first on line {self.labels[name][1]})", line, col)
        self.labels[name] = (len(self.words), line)

    def emit(self, token: _Token, line: int) -> None:
        self.words.append(_Word(token, line, len(self.words)))

    def statement(self, tokens: list[_Token], line: int) -> None:
        while tokens and tokens[0].literal is None and tokens[0].text.endswith(":"):
            self.define(tokens[0].text[:-1], line, tokens[0].col)
            tokens = tokens[1:]
        if not tokens:
            return
        head, args = tokens[0], tokens[1:]
        if head.literal is None and head.text.startswith("."):
            self.directive(head, args, line)
        elif head.literal is None and head.text in ("out", "halt"):
            self.sugar(head, args, line)
        else:
            self.instruction(tokens, line)

    def directive(self, head: _Token, args: list[_Token], line: int) -> None:
        if head.text not in (".data", ".string"):
            raise self.error(f"unknown directive '{head.text}' (expected .data or .string)", line, head.col)
        if not args:
            raise self.error(f"{head.text} needs at least one value", line, head.col)
        if head.text == ".data":
            for tok in args:
                self.emit(tok, line)
            return
        for tok in args:
            if tok.quote != '"':
                raise self.error(f".string expects a double-quoted string, got '{tok.text}'", line, tok.col)
            for ch in tok.literal or "":
                self.emit(_Token(repr(ch), tok.col, ch, "'"), line)

    def sugar(self, head: _Token, args: list[_Token], line: int) -> None:
        if head.text == "halt":
            if args:
                raise self.error("halt takes no operands", line, args[0].col)
            for text in ("0", "0", "-1"):
                self.emit(_Token(text, head.col), line)
            return
        if len(args) != 1:
            raise self.error(f"out takes one operand, got {len(args)}", line, head.col)
        self.emit(args[0], line)
        self.emit(_Token("-1", head.col), line)
        self.emit(_Token("?", head.col), line)

    def instruction(self, tokens: list[_Token], line: int) -> None:
        if len(tokens) not in (2, 3):
            raise self.error(f"an instruction has 2 or 3 operands (A B [C]), got {len(tokens)}", line, tokens[0].col)
        for tok in tokens:
            self.emit(tok, line)
        if len(tokens) == 2:
            self.emit(_Token("?", tokens[1].col), line)

    def resolve(self) -> list[int]:
        lo, hi = word_range(self.bits)
        image = []
        for word in self.words:
            value = self.value(word)
            if not lo <= value <= hi:
                raise self.error(f"value {value} ('{word.token.text}') is outside the {self.bits}-bit word range "
                                 f"[{lo}, {hi}]", word.line, word.token.col)
            image.append(value)
        return image

    def value(self, word: _Word) -> int:
        tok = word.token
        if tok.quote == "'":
            return ord(tok.literal or "")
        if tok.quote == '"':
            raise self.error("a string is only allowed after .string", word.line, tok.col)
        if _INT.fullmatch(tok.text):
            return int(tok.text, 0) if "x" in tok.text.lower() else int(tok.text)
        match = _EXPR.fullmatch(tok.text)
        if match is None:
            raise self.error(f"bad operand '{tok.text}' (expected an integer, label, label+k, ? or 'c')",
                             word.line, tok.col)
        base = match["base"]
        if base == "?":
            start = word.address + 1
        elif base in self.labels:
            start = self.labels[base][0]
        else:
            raise self.error(f"unknown label '{base}'", word.line, tok.col)
        offset = int(match["off"], 0) if match["off"] else 0
        return start - offset if match["sign"] == "-" else start + offset


def _tokenize(line: str, lineno: int, file: str) -> list[_Token]:
    """Split a line into tokens (quoted literals kept whole), stopping at a # or ; comment."""
    tokens: list[_Token] = []
    i, n = 0, len(line)
    while i < n:
        ch = line[i]
        if ch.isspace():
            i += 1
        elif ch in "#;":
            break
        elif ch in "'\"":
            tok, i = _quoted(line, i, lineno, file)
            tokens.append(tok)
        else:
            start = i
            while i < n and not line[i].isspace() and line[i] not in "#;":
                i += 1
            tokens.append(_Token(line[start:i], start + 1))
    return tokens


def _quoted(line: str, start: int, lineno: int, file: str) -> tuple[_Token, int]:
    """Decode the quoted literal starting at line[start]; return it and the index after it."""
    quote, chars, i = line[start], [], start + 1
    while i < len(line) and line[i] != quote:
        if line[i] == "\\":
            esc = line[i + 1] if i + 1 < len(line) else ""
            if esc not in _ESCAPES:
                raise HardwireError(f"unknown escape '\\{esc}'", file, lineno, i + 1)
            chars.append(_ESCAPES[esc])
            i += 2
        else:
            chars.append(line[i])
            i += 1
    if i >= len(line):
        kind = "string" if quote == '"' else "character"
        raise HardwireError(f"unterminated {kind} literal", file, lineno, start + 1)
    literal = "".join(chars)
    if quote == "'" and len(literal) != 1:
        raise HardwireError(f"a character literal holds one character, got {line[start:i + 1]}", file, lineno,
                            start + 1)
    if i + 1 < len(line) and not line[i + 1].isspace() and line[i + 1] not in "#;":
        raise HardwireError(f"unexpected '{line[i + 1]}' after a quoted literal", file, lineno, i + 2)
    return _Token(line[start:i + 1], start + 1, literal, quote), i + 1


def assemble(text: str, bits: int = 16, file: str = "<input>") -> list[int]:
    """Assemble SUBLEQ assembly source (syntax in the module docstring) into an image of words."""
    asm = _Assembler(bits, file)
    for lineno, line in enumerate(text.split("\n"), start=1):
        asm.statement(_tokenize(line, lineno, file), lineno)
    return asm.resolve()


def assemble_file(path: str, bits: int = 16) -> list[int]:
    """Assemble a .sqa file; errors name the file, line and column."""
    return assemble(read_text(path), bits, path)
