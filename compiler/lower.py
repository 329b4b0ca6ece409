"""Checked program -> IR block graph (networkx) -> schedule (sublayer of every block)."""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
from hardwire.compiler.core.sops import (
    WORD,
    Affine,
    Aggregate,
    Const,
    Indices,
    Lin,
    Map,
    Mux,
    Norm,
    Program,
    Register,
    SelAnd,
    Select,
    SOp,
    Tokens,
    Width,
    selector_atoms,
)

EMBED, ATTN, MLP = "embed", "attn", "mlp"


@dataclass(frozen=True, eq=False)
class Block:
    """One block of the model: an embedding feature, an attention head or an MLP."""
    kind: str
    sop: SOp

    def __repr__(self) -> str:
        return f"{self.kind}:{self.sop.label}"


def feature_of(s: SOp) -> str | None:
    """'token' / 'position' if s depends only on tokens / only on indices (so it is embedded)."""
    if isinstance(s, Tokens):
        return "token"
    if isinstance(s, Indices):
        return "position"
    if isinstance(s, Const):
        return "const"
    if isinstance(s, Register):
        return "register"
    if isinstance(s, Mux) and (s.target is not None or any(g is not None for g, _ in s.cases)):
        return None
    if isinstance(s, Map):
        kinds = {feature_of(i) for i in s.inputs} - {"const"}
        if "token" in kinds and any(i.encoding == WORD for i in s.inputs):
            return None  # a table over every word token would have 2^bits rows: computed by an MLP instead
        if len(kinds) == 1 and kinds <= {"token", "position"}:
            return kinds.pop()
    return None


def read_atoms(sel) -> list:
    """The selects whose keys and queries a selector's head reads: all of them, except a plain `true` that is
    a conjunct of its own (wire.terms_of gives it one column on not_bos, reading neither side)."""
    if isinstance(sel, Select) and sel.fn is None and sel.pred == "true":
        return []
    if isinstance(sel, SelAnd):
        return read_atoms(sel.left) + read_atoms(sel.right)
    return selector_atoms(sel)


def inputs_of(s: SOp) -> list[SOp]:
    if isinstance(s, Mux):  # what the wiring reads: the exclusive guards and the case values
        seen: list[SOp] = [s.target] if s.target is not None else []
        for g, val in s.cases:
            vals = [x for _, x in val.terms] if isinstance(val, Lin) else [val] if isinstance(val, SOp) else []
            for x in ([g] if g is not None else []) + vals:
                if not any(x is y for y in seen):
                    seen.append(x)
        return seen
    if isinstance(s, Map):
        return list(s.inputs)
    if isinstance(s, Affine):
        return [x for _, x in s.terms]
    if isinstance(s, Norm):
        return [s.x]
    if isinstance(s, (Aggregate, Width)):
        atoms = read_atoms(s.selector)
        out = [a.keys for a in atoms] + [a.queries for a in atoms]
        return out + ([s.value] if isinstance(s, Aggregate) else [])
    return []


def walk(roots: list[SOp]) -> list[SOp]:
    """Every value the roots read, each once, inputs before their readers (post-order over inputs_of)."""
    order: list[SOp] = []
    seen: set[int] = set()

    def visit(s: SOp) -> None:
        if id(s) in seen:
            return
        seen.add(id(s))
        for i in inputs_of(s):
            visit(i)
        order.append(s)
    for s in roots:
        visit(s)
    return order


def readers(prog: Program) -> dict[int, list[SOp]]:
    """For every value the roots reach, the values that read it (by id)."""
    out: dict[int, list[SOp]] = {}
    for s in walk(prog.roots()):
        for i in inputs_of(s):
            out.setdefault(id(i), []).append(s)
    return out


def lower(prog: Program, roots: list[SOp] | None = None) -> nx.DiGraph:
    """Blocks as nodes, data dependencies as edges. A Width is a head plus an MLP.

    Registers are leaves, like embeddings: a loop body starts from their values at the start of a pass.
    """
    g = nx.DiGraph()
    producer: dict[int, Block] = {}

    def sources(s: SOp) -> list[Block]:
        """The blocks s reads: its producer, or for an Affine (read as a linear form) its terms' producers."""
        if isinstance(s, Affine):
            return [b for _, x in s.terms for b in sources(x)]
        b = visit(s)
        return [] if b is None else [b]

    def visit(s: SOp) -> Block | None:
        if isinstance(s, Const):
            return None
        if id(s) in producer:
            return producer[id(s)]
        if feature_of(s) in ("token", "position", "register"):  # folded into the embedding tables
            block = Block(EMBED, s)
            g.add_node(block)
            producer[id(s)] = block
            return block
        deps = [b for i in inputs_of(s) for b in sources(i)]
        if isinstance(s, (Map, Norm)):  # a LayerNorm sits in an MLP slot, beside the MLP
            block = Block(MLP, s)
            g.add_node(block)
            g.add_edges_from((d, block) for d in deps)
        elif isinstance(s, Aggregate):
            block = Block(ATTN, s)
            g.add_node(block)
            g.add_edges_from((d, block) for d in deps)
        else:  # Width: a head computes 1/(w+1), an MLP turns it into w
            head = Block(ATTN, s)
            g.add_node(head)
            g.add_edges_from((d, head) for d in deps)
            block = Block(MLP, s)
            g.add_edge(head, block)
        producer[id(s)] = block
        return block

    for s in (prog.outputs.values() if roots is None else roots):
        visit(s)
    return g


def schedule(g: nx.DiGraph, commits: list[SOp] | None = None) -> dict[Block, int]:
    """As-soon-as-possible sublayers: 2L is layer L's attention, 2L+1 its MLP, -1 the embedding.

    A loop body's commits all go to its last MLP, so every register changes at once, at the end of a pass.
    """
    when: dict[Block, int] = {}
    for b in nx.topological_sort(g):
        if b.kind == EMBED:
            when[b] = -1
            continue
        earliest = max((when[p] for p in g.predecessors(b)), default=-1) + 1
        parity = 0 if b.kind == ATTN else 1
        when[b] = earliest if earliest % 2 == parity else earliest + 1
    if commits:
        ids = {id(c) for c in commits}
        last = max(t for b, t in when.items() if id(b.sop) in ids)
        for b in when:
            if id(b.sop) in ids:
                when[b] = last
    return when
