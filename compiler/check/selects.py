"""The checker's rules for select: custom predicates `(k, q) -> expr` (a truth table over the value sets), scalar
keys and queries (made one-hot), and the proof that a select picks at most one key for a one-hot aggregate."""
from __future__ import annotations

import itertools
from typing import Any

from hardwire.compiler.check.messages import shown
from hardwire.compiler.core.errors import HardwireError
from hardwire.compiler.core.limits import VALUE_BUDGET
from hardwire.compiler.core.sops import (
    ONEHOT,
    SCALAR,
    Lin,
    SelAnd,
    Select,
    SelNot,
    SelOr,
    SOp,
    Table,
    atom_holds,
    value_key,
)


def truth_table(pairs: set) -> Any:
    """A custom predicate as a function of (key value, query value): true on `pairs` (by value_key), else false
    (none included: a none key or query selects nothing)."""
    def holds(k, q, _pairs=frozenset(pairs)) -> bool:
        return (value_key(k), value_key(q)) in _pairs
    return holds


class SelectOps:
    """Mixin of the Elaborator: the select rules (it provides expr, err, source, make_map and lambda_params)."""

    def custom_select(self, keys: SOp, queries: SOp, lam, local: dict | None, node) -> Select:
        """`select(k, q, (a, b) -> body)`: the body, evaluated on every (key value, query value) pair, must be
        true or false (none, as from a table's missing key, is false); the select holds where it is true."""
        params_node, body = lam.children
        names = self.lambda_params(params_node)
        if len(names) != 2:
            raise self.err(f"a select's predicate takes two parameters, the key then the query, not {len(names)}: "
                           "(k, q) -> q == k + 1", lam)
        kvals = [v for v in keys.values if v is not None]
        qvals = [v for v in queries.values if v is not None]
        if len(kvals) * len(qvals) > VALUE_BUDGET:
            raise self.err(f"the predicate is a table over {len(kvals):,} key values x {len(qvals):,} query values "
                           f"= {len(kvals) * len(qvals):,} pairs, over the budget of {VALUE_BUDGET:,}; narrow the "
                           "value sets", node)
        pairs = set()
        outer = dict(local or {})
        for kv, qv in itertools.product(kvals, qvals):
            try:
                r = self.expr(body, {**outer, names[0]: kv, names[1]: qv})
            except HardwireError as e:
                raise HardwireError(f"{e.message} (where the key {names[0]} is {shown(kv)} and the query "
                                    f"{names[1]} is {shown(qv)})", e.file, e.line, e.column) from None
            if isinstance(r, (SOp, Lin, Select, SelAnd, SelOr, SelNot, Table)):
                raise self.err("a select's predicate gives true or false from its two parameters, constants, params "
                               "and tables; it cannot read a sequence (select on a tuple of them instead)", body)
            if r is not None and not isinstance(r, bool):
                raise self.err(f"a select's predicate must be true or false, but `{self.source(body)}` is "
                               f"{shown(r)} where the key {names[0]} is {shown(kv)} and the query {names[1]} is "
                               f"{shown(qv)}", body)
            if r is True:
                pairs.add((value_key(kv), value_key(qv)))
        m = node.meta
        return Select(keys, queries, self.source(lam), fn=truth_table(pairs), line=m.line, column=m.column)

    def select_side(self, x: SOp, node) -> SOp:
        """A scalar key or query, made one-hot (`onehot(x)`, an MLP staircase over its values) so the head can
        spell the predicate out value by value; anything else as it is."""
        if x.encoding != SCALAR:
            return x
        return self.make_map(lambda v: v, [x], "identity", node, ONEHOT)

    def picks_one_key_per_query(self, sel: Select) -> bool:
        """Every query value is selected by at most one key value (enumerated: within the value budget), so over
        keys that differ at every position the select picks at most one position."""
        kvals, qvals = sel.keys.values, sel.queries.values
        if len(kvals) * len(qvals) > VALUE_BUDGET:
            return False
        return all(sum(atom_holds(sel, kv, qv) for kv in kvals) <= 1 for qv in qvals)
