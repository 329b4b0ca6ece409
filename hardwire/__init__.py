"""hardwire's Python API: compile small programs into exact transformer weights, run, trace and check them.

>>> import hardwire
>>> model = hardwire.compile_file("programs/reverse.hw")
>>> model("a b c")["outputs"]
{'reversed': ['c', 'b', 'a']}
"""
from hardwire.api import Check, Model, compile_file, compile_source, from_rasp, load
from hardwire.compiler.core.errors import HardwireError
from hardwire.heads import Head
from hardwire.trace import Trace

__all__ = ["Check", "HardwireError", "Head", "Model", "Trace", "compile_file", "compile_source", "from_rasp", "load"]
