"""Decoding bugs: output values that came back from the model as something else (compiler/artifact.py,
runtime/model.py, and value sets in compiler/check/elaborate.py and sops.py).

Fixed by the typed value encoding of weight-file format hardwire/2 (artifact.to_json / from_json) and value
sets keyed by type and value (sops.value_key). Each program is also run from a saved weight file, since the
header's JSON is where the values used to change type.
"""
import textwrap

from hardwire.compiler.check.elaborate import check_source
from hardwire.compiler.interpret import run
from hardwire.compiler.pipeline import compile_program
from hardwire.runtime.model import load

from hardwire.harness import compare
from tests.fuzz_programs import same
from tests.regressions.common import check

TUPLE_OUTPUT = """
    vocab {"a", "b"}
    max_len 3
    table t { "a" -> (A, 1), "b" -> (B, 0) }
    output o = t[tokens]
"""


def from_file(source: str, batch: list[list], tmp_path) -> None:
    """Saved and loaded, the model still agrees with the interpreter, value and type; `hardwire check` too."""
    prog = check_source(textwrap.dedent(source))
    compiled = compile_program(prog)
    compiled.save(str(tmp_path / "m.safetensors"))
    model = load(str(tmp_path / "m.safetensors"), "cpu")
    for xs, got in zip(batch, model.run(batch)):
        assert same(got, run(prog, xs)), f"input {xs}: model {got} != interpreter {run(prog, xs)}"
    assert compare(prog, model, 50)["mismatches"] == 0


# fixed (hardwire/2): a tuple is {"tuple": [...]} in the header and decodes to a tuple
def test_tuple_valued_output(tmp_path) -> None:
    # ["b", "a"]: model [["B", 0], ["A", 1]], interpreter [("B", 0), ("A", 1)]
    check(TUPLE_OUTPUT, [["b", "a"]])
    from_file(TUPLE_OUTPUT, [["b", "a"]], tmp_path)


SLASH_STRING = """
    vocab {"1/2", "a"}
    max_len 3
    output o = tokens
    output half = aggregate(select(indices, indices, <=), scalar(indices))
"""


# fixed (hardwire/2): a fraction is {"frac": "1/2"} in the header, so a plain string stays a string
def test_string_that_looks_like_a_fraction(tmp_path) -> None:
    # ["a", "1/2"]: model ["a", Fraction(1, 2)], interpreter ["a", "1/2"]
    check(SLASH_STRING, [["a", "1/2"]])
    from_file(SLASH_STRING, [["a", "1/2"], ["1/2", "1/2", "a"]], tmp_path)


BOOL_AND_INT = """
    vocab {true, false}
    max_len 2
    output o = min(tokens, indices)
"""


# fixed: value sets are keyed by (type, value) (sops.value_key), so 0 and false are two one-hot values
def test_value_set_holding_false_and_zero(tmp_path) -> None:
    # [true, true]: model [false, true], interpreter [0, true]
    check(BOOL_AND_INT, [[True, True], [True, False]])
    from_file(BOOL_AND_INT, [[True, True], [True, False], [False, False]], tmp_path)
    assert check_source(textwrap.dedent(BOOL_AND_INT)).outputs["o"].values == (False, True, 0)


def test_vocab_of_zero_and_false_is_two_tokens(tmp_path) -> None:
    # 0 and false are different tokens (token ids are keyed by type and value); a map tells them apart
    source = """
        vocab {0, false, 1, true}
        max_len 3
        output o = tokens
        output n = map(t -> t == 0, tokens)
    """
    check(source, [[0, False, True], [1, True, False]])
    from_file(source, [[0, False, True], [1, True, False]], tmp_path)
