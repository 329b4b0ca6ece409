"""The Python API: compile a `.hw` program, run it, trace it, check it against the interpreter, save it.

A thin layer over compiler/ and runtime/: running and checking are the same functions the CLI uses
(hardwire/harness.py), so `model(x)` returns what `hardwire run --json` prints.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

import torch

from hardwire.compiler.artifact import CompiledModel, from_json
from hardwire.compiler.check.elaborate import check_file, check_source
from hardwire.compiler.core.errors import HardwireError
from hardwire.compiler.core.sops import Program
from hardwire.compiler.pipeline import compile_program
from hardwire.compiler.size_budget import DEFAULT_MAX_PARAMS
from hardwire.harness import compare, interpret_batch, parse_input, run_batch
from hardwire.heads import Head, heads_from_config, heads_from_program
from hardwire.inputs import is_batch, wrong_kind
from hardwire.runtime.model import Transformer, from_compiled
from hardwire.runtime.model import load as load_weights
from hardwire.trace import Trace, trace_rows

Input = Union[str, Sequence]  # one input: "a b c" (split as the CLI splits it) or a list of tokens
Inputs = Union[Input, Sequence[Input]]  # one input, or a batch: a list of those (see Model.__call__)
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise HardwireError(f"dtype must be one of {', '.join(DTYPES)}, got {name!r}")
    return DTYPES[name]


@dataclass
class Check:
    """What `Model.check` found: how many random inputs disagreed, and the first that did
    ({"input", "model", "interpreter"}, or None).

    >>> import hardwire
    >>> found = hardwire.compile_file("programs/reverse.hw").check(samples=20, seed=1)
    >>> found.mismatches, found.first is None
    (0, True)
    """
    samples: int
    mismatches: int
    first: dict | None = None


class Model:
    """A compiled program: call it on inputs, trace it, check it, save it.

    `transformer` is the runtime's torch module, `compiled` the weights and header as saved, and
    `program` the checked program (None for a model loaded from a weight file, which holds no source).

    >>> import hardwire
    >>> hardwire.compile_file("programs/reverse.hw")
    Model(reverse: plain, 3 layers, 2 heads, d_model 40, d_mlp 64, 9,280 params (430 non-zero))
    """

    def __init__(self, transformer: Transformer, compiled: CompiledModel, program: Program | None = None):
        self.transformer, self.compiled, self.program = transformer, compiled, program

    @property
    def name(self) -> str:
        """The program's name.

        >>> import hardwire
        >>> hardwire.compile_file("programs/reverse.hw").name
        'reverse'
        """
        return self.compiled.config["program"]

    @property
    def kind(self) -> str:
        """'plain', 'looped' (a `loop`, run until it halts) or 'generating' (`generate`, appends tokens).

        >>> import hardwire
        >>> hardwire.compile_file("programs/parity_cot.hw", params={"n": 4}).kind
        'generating'
        """
        cfg = self.compiled.config
        return "generating" if "generate" in cfg else "looped" if "loop" in cfg else "plain"

    @property
    def vocab(self) -> list | range:
        """The tokens an input may hold, as values (a range of integers for `vocab word`).

        >>> import hardwire
        >>> hardwire.compile_file("programs/reverse.hw").vocab
        ['a', 'b', 'c', 'd']
        >>> hardwire.compile_file("programs/subleq.hw", params={"mem": 8, "bits": 8}).vocab
        range(-128, 128)
        """
        cfg = self.compiled.config
        if cfg.get("word_vocab"):
            half = 1 << (cfg["word_bits"] - 1)
            return range(-half, half)
        return [from_json(v) for v in cfg["vocab"]]

    @property
    def max_len(self) -> int:
        """The longest input the model accepts (the program's `max_len`).

        >>> import hardwire
        >>> hardwire.compile_file("programs/reverse.hw").max_len
        16
        """
        return self.compiled.config["max_len"]

    @property
    def heads(self) -> list[Head]:
        """Every attention head in layer order: its layer and index, the selector it attends with, and its names in a
        TransformerLens export (`Head.hook`, `Head.name`). A model loaded from a weight file has no selector text.

        >>> import hardwire
        >>> for h in hardwire.compile_file("programs/reverse.hw").heads:
        ...     print(h.name, h.hook, h.selector, "->", h.output)
        L0H0 blocks.0.attn.hook_pattern select(indices, indices, true) -> length
        L2H0 blocks.2.attn.hook_pattern select(indices, opp, ==) -> reversed
        """
        if getattr(self, "_heads", None) is None:  # placing the blocks again takes a compile's lowering: once
            self._heads = (heads_from_config(self.compiled.config) if self.program is None
                           else heads_from_program(self.program, self.compiled.config))
        return list(self._heads)

    def _tokens(self, x: Input) -> list:
        cfg = self.compiled.config
        if isinstance(x, str):
            return parse_input(x, cfg["vocab"], bool(cfg.get("word_vocab")))
        if isinstance(x, (list, tuple)):
            if not cfg.get("word_vocab"):
                why = wrong_kind(list(x), self.vocab, self.name, lambda t: parse_input(t, cfg["vocab"]))
                if why:
                    raise HardwireError(why)
            return list(x)
        raise HardwireError(f"an input is a string of tokens or a list of tokens, got {type(x).__name__}")

    def _batch(self, inputs: Inputs, batch: bool | None = None) -> tuple[list[list], bool]:
        """The inputs as token lists, and whether one input (not a batch) was given."""
        if batch is None:
            batch = is_batch(inputs)
        if batch and not isinstance(inputs, (list, tuple)):
            raise HardwireError(f"batch=True needs a list of inputs, got {type(inputs).__name__}")
        if batch and not inputs:
            raise HardwireError("the batch is empty; give at least one input")
        return [self._tokens(x) for x in (inputs if batch else [inputs])], not batch

    def __call__(self, inputs: Inputs, max_steps: int = 10_000, progress: bool = False, *,
                 batch: bool | None = None) -> dict | list:
        """Run the weights on one input or on a batch.

        One input is a string, split as the command line splits it ("a b c"), or a list of tokens (["a", "b"],
        [3, 1, 2]). A batch is a list of inputs: of strings (["x y", "z z z"]) or of token lists ([["a"], [1, 2]]).
        A list of one-word strings (["c", "c", "a"]) is one input of those tokens, unless `batch=True` says it
        is a batch of one-token inputs (`batch=False` forces one input). A batch gives a list of results.

        Returns what `hardwire run` reports: {"input", "outputs"}; a looped program adds "steps", "halted" and
        "emitted" (it stops after `max_steps` passes); a generating program gives {"input", "generated"}.
        Values are typed as the interpreter computes them: Fraction, int, str, bool, tuple, None
        (`hardwire run --json` prints the same values, encoded as docs/tutorial.md says).

        >>> import hardwire
        >>> reverse = hardwire.compile_file("programs/reverse.hw")
        >>> reverse("a b c")
        {'input': ['a', 'b', 'c'], 'outputs': {'reversed': ['c', 'b', 'a']}}
        >>> [r["outputs"]["reversed"] for r in reverse(["a b", "d c b"])]
        [['b', 'a'], ['b', 'c', 'd']]
        >>> [r["outputs"]["reversed"] for r in reverse([["a", "b"], ["d"]])]
        [['b', 'a'], ['d']]
        >>> len(reverse(["a", "b"])["input"]), len(reverse(["a", "b"], batch=True))
        (2, 2)
        >>> subleq = hardwire.compile_file("programs/subleq.hw", params={"mem": 8, "bits": 8})
        >>> r = subleq("6 -1 3 7 7 -1 72 0")      # print mem[6], then halt
        >>> r["emitted"], r["steps"], r["halted"]
        ([72], 2, True)
        >>> hardwire.compile_file("programs/parity_cot.hw", params={"n": 4})("1 0 1 1 =")
        {'input': [1, 0, 1, 1, '='], 'generated': [1, 1, 0, 1]}
        """
        rows, single = self._batch(inputs, batch)
        out = run_batch(self.transformer, rows, max_steps=max_steps, progress=progress)
        return out[0] if single else out

    def interpret(self, inputs: Inputs, max_steps: int = 10_000, *, batch: bool | None = None) -> dict | list:
        """The reference interpreter on the same inputs, in the same shape as calling the model.

        >>> import hardwire
        >>> model = hardwire.compile_file("programs/frac_prevs.hw")
        >>> model.interpret("x y x")
        {'input': ['x', 'y', 'x'], 'outputs': {'frac': [1, Fraction(1, 2), Fraction(2, 3)]}}
        >>> model("x y x") == model.interpret("x y x")
        True
        """
        if self.program is None:
            raise HardwireError("this model was loaded from a weight file, which holds no program to interpret; "
                                "use hardwire.compile_file on its .hw source")
        rows, single = self._batch(inputs, batch)
        out = interpret_batch(self.program, rows, max_steps)
        return out[0] if single else out

    def trace(self, inputs: Inputs, *, batch: bool | None = None) -> Trace | list[Trace]:
        """The labelled residual stream after every layer (see `Trace`), of one input or of each input of a batch
        (inputs as for calling the model; a batch runs as one forward pass, padded as the runtime pads).

        >>> import hardwire
        >>> trace = hardwire.compile_file("programs/reverse.hw").trace("a b")
        >>> len(trace.layers), trace.layers[0].shape, trace.labels[:3]
        (4, (3, 40), ['bos', 'not_bos', 'indices=0'])
        >>> trace.features(1)["reversed"]   # an output only outputs read holds its value's index: b is values[2]
        2.0
        >>> [t.features(1)["tokens=a"] for t in hardwire.compile_file("programs/reverse.hw").trace(["a b", "a"])]
        [1.0, 1.0]
        """
        t = self.transformer
        rows, single = self._batch(inputs, batch)
        ids, lengths = t.encode(rows)
        with torch.no_grad():
            _, residuals, patterns = t(ids, lengths, trace=True)
        with_heads = [i + 1 for i, layer in enumerate(t.config["layers"]) if layer["heads"]]
        traces = trace_rows(self.name, rows, list(t.labels), residuals, dict(zip(with_heads, patterns)))
        return traces[0] if single else traces

    def summary(self) -> dict:
        """Sizes, as `hardwire compile` prints them: layers, heads, d_model, d_head, d_mlp, params, nonzero_params.

        >>> import hardwire
        >>> hardwire.compile_file("programs/histogram.hw").summary()["d_model"]
        8
        """
        return self.compiled.summary()

    def check(self, samples: int = 100, seed: int = 0, max_steps: int = 10_000) -> Check:
        """Compare the weights with the interpreter on random inputs of every length, as `hardwire check` does.

        >>> import hardwire
        >>> hardwire.compile_file("programs/histogram.hw").check(samples=50)
        Check(samples=50, mismatches=0, first=None)
        """
        if self.program is None:
            raise HardwireError("this model was loaded from a weight file, which holds no program to check "
                                "against; use hardwire.compile_file on its .hw source")
        r = compare(self.program, self.transformer, samples, seed, max_steps)
        return Check(r["samples"], r["mismatches"], r["examples"][0] if r["examples"] else None)

    def save(self, path: str) -> None:
        """Write the weights as a safetensors file, byte for byte what `hardwire compile -o path` writes.

        >>> import hardwire, os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "reverse.safetensors")
        >>> hardwire.compile_file("programs/reverse.hw").save(path)
        >>> hardwire.load(path)("a b")["outputs"]
        {'reversed': ['b', 'a']}
        """
        self.compiled.save(path)

    def __repr__(self) -> str:
        s = self.summary()
        return (f"Model({s['program']}: {self.kind}, {s['layers']} layers, {s['heads']} heads, "
                f"d_model {s['d_model']}, d_mlp {s['d_mlp']}, {s['params']:,} params "
                f"({s['nonzero_params']:,} non-zero))")


def _model(prog: Program, device: str | None, dtype: str | None, max_params: int | None) -> Model:
    """Compile (refusing a model over `max_params` parameters before building it) and place on the device, in
    `dtype` if it holds the model exactly (else HardwireError); with no dtype, float32 when it holds the
    model, else float64 with a note on stderr (compiler/precision.py)."""
    import sys

    from hardwire.compiler.precision import choose_dtype, fit
    if dtype is not None:
        _dtype(dtype)
    compiled = compile_program(prog, max_params)
    dtype, note = choose_dtype(prog.name, fit(compiled.tensors, compiled.config), dtype)
    if note:
        print(f"hardwire: {note}", file=sys.stderr)
    return Model(from_compiled(compiled, device, _dtype(dtype)), compiled, prog)


def _warn(prog: Program) -> Program:
    """The checker's warnings (a comparison with a literal that never matches) as Python warnings, in the CLI's
    words; strict=True refuses them instead, as `--strict` does."""
    import warnings
    for w in prog.warnings:
        warnings.warn(f"{w} (strict=True makes this an error)", UserWarning, stacklevel=3)
    return prog


def compile_file(path: str, params: dict[str, int] | None = None, *, device: str | None = None,
                 dtype: str | None = None, max_params: int | None = DEFAULT_MAX_PARAMS, strict: bool = False) -> Model:
    """Check and compile a `.hw` file; `params` overrides its `param` lines (like `--param k=5`).

    device: "cpu" or "cuda" (default: cuda when present); dtype: "float32" or "float64" (default: float32, or
    float64 with a note on stderr for a model float32 cannot hold exactly; a dtype that cannot is refused).
    max_params: refuse a larger model before building it, as `--max-params` does (None: no limit).
    strict: refuse the program on a checker warning (otherwise a Python UserWarning), as `--strict` does.

    >>> import hardwire
    >>> hardwire.compile_file("programs/histogram.hw")("a b a")["outputs"]
    {'hist': [2, 1, 2]}
    """
    from hardwire.compiler.validate import refuse_weights
    refuse_weights(path)  # a weight file is named as one (hardwire.load reads it)
    return _model(_warn(check_file(path, params, strict)), device, dtype, max_params)


def compile_source(text: str, params: dict[str, int] | None = None, name: str = "<source>", *,
                   device: str | None = None, dtype: str | None = None,
                   max_params: int | None = DEFAULT_MAX_PARAMS, strict: bool = False) -> Model:
    """Check and compile program text; `name` is the file name errors report (device, dtype, max_params,
    strict: as for compile_file).

    >>> import hardwire
    >>> double = hardwire.compile_source('''
    ... program double
    ... param k = 2
    ... vocab {0, 1, 2}
    ... max_len 4
    ... output y = tokens * k
    ... ''', params={"k": 3})
    >>> double("0 1 2")["outputs"]
    {'y': [0, 3, 6]}
    """
    return _model(_warn(check_source(text, name, params, strict)), device, dtype, max_params)


def from_rasp(expr, vocab, max_len: int, causal: bool = False, name: str = "rasp", *, distinct: bool = False,
              device: str | None = None,
              dtype: str | None = None, max_params: int | None = DEFAULT_MAX_PARAMS, strict: bool = False) -> Model:
    """Compile a Tracr RASP program (`tracr.rasp` SOp, needs the `[tracr]` extra): a Model whose one output is named
    by the program's label. vocab: the input tokens; max_len: the longest input; causal: Tracr's causal mode;
    distinct: inputs never repeat a token (the `distinct` header: tokens are unique keys). The
    .hw text is `hardwire.frontends.rasp.to_hw(...)`; an error names the RASP expression it comes from.

    >>> import hardwire
    >>> from tracr.compiler import lib  # doctest: +SKIP
    >>> hardwire.from_rasp(lib.make_hist(), vocab={"a", "b"}, max_len=4)("a b a")["outputs"]  # doctest: +SKIP
    {'hist': [2, 1, 2]}
    """
    from hardwire.frontends.rasp import translate
    tr = translate(expr, vocab, max_len, causal, name, distinct)
    try:
        return compile_source(tr.text(), name="<rasp>", device=device, dtype=dtype, max_params=max_params,
                              strict=strict)
    except HardwireError as e:
        raise tr.relabel(e) from None


def load(path: str, *, device: str | None = None, dtype: str = "float32") -> Model:
    """Load a weight file written by `hardwire compile` or `Model.save`. It holds the weights and decoders
    but not the program, so `check` and `interpret` need the model compiled from source.

    >>> import hardwire, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "histogram.safetensors")
    >>> hardwire.compile_file("programs/histogram.hw").save(path)
    >>> model = hardwire.load(path)
    >>> model("b b a")["outputs"], model.summary() == hardwire.compile_file("programs/histogram.hw").summary()
    ({'hist': [2, 2, 1]}, True)
    """
    from safetensors.numpy import load_file
    transformer = load_weights(path, device, _dtype(dtype))  # checks the header: HardwireError if foreign
    return Model(transformer, CompiledModel(load_file(path), transformer.config, transformer.labels,
                                            transformer.outputs))
