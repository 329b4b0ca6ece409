"""The machines hardwire compiles: a SUBLEQ computer and Turing machines, with their plain-Python references."""
