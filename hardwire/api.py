"""The Python API: compile a `.hw` program, run it, trace it, check it against the interpreter, save it.

A thin layer over compiler/ and runtime/: running and checking are the same functions the CLI uses
(compiler/harness.py), so `model(x)` returns what `hardwire run --json` prints.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

import torch

from hardwire.compiler.artifact import CompiledModel
from hardwire.compiler.check.elaborate import check_file, check_source
from hardwire.compiler.core.errors import HardwireError
from hardwire.compiler.core.sops import Program
from hardwire.compiler.pipeline import compile_program
from hardwire.compiler.size_budget import DEFAULT_MAX_PARAMS
from hardwire.harness import compare, interpret_batch, parse_input, run_batch
from hardwire.runtime.model import Transformer, from_compiled
from hardwire.runtime.model import load as load_weights
from hardwire.trace import Trace

Input = Union[str, Sequence]  # one input: "a b c" (split as the CLI splits it) or a list of tokens
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
    Model(reverse: plain, 3 layers, 2 heads, d_model 75, d_mlp 256, 54,900 params (1,791 non-zero))
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

    def _tokens(self, x: Input) -> list:
        if isinstance(x, str):
            cfg = self.compiled.config
            return parse_input(x, cfg["vocab"], bool(cfg.get("word_vocab")))
        if isinstance(x, (list, tuple)):
            return list(x)
        raise HardwireError(f"an input is a string of tokens or a list of tokens, got {type(x).__name__}")

    def _batch(self, inputs: Input | list[list]) -> tuple[list[list], bool]:
        """The inputs as token lists, and whether one input (not a batch: a list of lists) was given."""
        batch = isinstance(inputs, list) and bool(inputs) and all(isinstance(x, (list, tuple)) for x in inputs)
        return [self._tokens(x) for x in (inputs if batch else [inputs])], not batch

    def __call__(self, inputs: Input | list[list], max_steps: int = 10_000, progress: bool = False) -> dict | list:
        """Run the weights on one input (a string or a list of tokens) or a batch (a list of lists).

        Returns what `hardwire run --json` prints: {"input", "outputs"}; a looped program adds "steps",
        "halted" and "emitted" (it stops after `max_steps` passes); a generating program gives
        {"input", "generated"}. Fractions come back as "a/b" strings and tuples as lists, as JSON holds them
        (`self.transformer.run(batch)` gives the values themselves). A batch gives a list of these.

        >>> import hardwire
        >>> reverse = hardwire.compile_file("programs/reverse.hw")
        >>> reverse("a b c")
        {'input': ['a', 'b', 'c'], 'outputs': {'reversed': ['c', 'b', 'a']}}
        >>> [r["outputs"]["reversed"] for r in reverse([["a", "b"], ["d"]])]
        [['b', 'a'], ['d']]
        >>> subleq = hardwire.compile_file("programs/subleq.hw", params={"mem": 8, "bits": 8})
        >>> r = subleq("6 -1 3 7 7 -1 72 0")      # print mem[6], then halt
        >>> r["emitted"], r["steps"], r["halted"]
        ([72], 2, True)
        >>> hardwire.compile_file("programs/parity_cot.hw", params={"n": 4})("1 0 1 1 =")
        {'input': [1, 0, 1, 1, '='], 'generated': [1, 1, 0, 1]}
        """
        batch, single = self._batch(inputs)
        rows = run_batch(self.transformer, batch, max_steps=max_steps, progress=progress)
        return rows[0] if single else rows

    def interpret(self, inputs: Input | list[list], max_steps: int = 10_000) -> dict | list:
        """The reference interpreter on the same inputs, in the same shape as calling the model.

        >>> import hardwire
        >>> model = hardwire.compile_file("programs/frac_prevs.hw")
        >>> model.interpret("x y x")
        {'input': ['x', 'y', 'x'], 'outputs': {'frac': [1, '1/2', '2/3']}}
        >>> model("x y x") == model.interpret("x y x")
        True
        """
        if self.program is None:
            raise HardwireError("this model was loaded from a weight file, which holds no program to interpret; "
                                "use hardwire.compile_file on its .hw source")
        batch, single = self._batch(inputs)
        rows = interpret_batch(self.program, batch, max_steps)
        return rows[0] if single else rows

    def trace(self, input: Input) -> Trace:
        """The labelled residual stream of one input after every layer (see `Trace`).

        >>> import hardwire
        >>> trace = hardwire.compile_file("programs/reverse.hw").trace("a b")
        >>> len(trace.layers), trace.layers[0].shape, trace.labels[:3]
        (4, (3, 75), ['bos', 'not_bos', 'indices=0'])
        >>> trace.features(1)["reversed=b"]
        1.0
        """
        t = self.transformer
        tokens = self._tokens(input)
        ids, lengths = t.encode([tokens])
        with torch.no_grad():
            _, residuals, patterns = t(ids, lengths, trace=True)
        with_heads = [i + 1 for i, layer in enumerate(t.config["layers"]) if layer["heads"]]
        return Trace(self.name, tokens, list(t.labels), [r[0].cpu().numpy() for r in residuals],
                     {i: a[0].cpu().numpy() for i, a in zip(with_heads, patterns)})

    def summary(self) -> dict:
        """Sizes, as `hardwire compile` prints them: layers, heads, d_model, d_head, d_mlp, params, nonzero_params.

        >>> import hardwire
        >>> hardwire.compile_file("programs/histogram.hw").summary()["d_model"]
        24
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


def compile_file(path: str, params: dict[str, int] | None = None, *, device: str | None = None,
                 dtype: str | None = None, max_params: int | None = DEFAULT_MAX_PARAMS) -> Model:
    """Check and compile a `.hw` file; `params` overrides its `param` lines (like `--param k=5`).

    device: "cpu" or "cuda" (default: cuda when present); dtype: "float32" or "float64" (default: float32, or
    float64 with a note on stderr for a model float32 cannot hold exactly; a dtype that cannot is refused).
    max_params: refuse a larger model before building it, as `--max-params` does (None: no limit).

    >>> import hardwire
    >>> hardwire.compile_file("programs/histogram.hw")("a b a")["outputs"]
    {'hist': [2, 1, 2]}
    """
    from hardwire.compiler.validate import refuse_weights
    refuse_weights(path)  # a weight file is named as one (hardwire.load reads it)
    return _model(check_file(path, params), device, dtype, max_params)


def compile_source(text: str, params: dict[str, int] | None = None, name: str = "<source>", *,
                   device: str | None = None, dtype: str | None = None,
                   max_params: int | None = DEFAULT_MAX_PARAMS) -> Model:
    """Check and compile program text; `name` is the file name errors report (device, dtype, max_params: as
    for compile_file).

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
    return _model(check_source(text, name, params), device, dtype, max_params)


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
