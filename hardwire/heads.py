"""Model.heads: every attention head, where it sits, what it selects, and its name in a TransformerLens export."""
from __future__ import annotations

import copy
from dataclasses import dataclass

from hardwire.compiler.core.errors import HardwireError


@dataclass(frozen=True)
class Head:
    """One attention head: `layer` is 1-based (the key of `Trace.attention`; layer 0 is the embedding), `index`
    0-based within the layer (the row of `Trace.attention[layer]`); `selector` is the `select(...)` it attends
    with, `value` what it averages (None for a `width` count) and `output` the value it computes (its name, or
    its expression for an unnamed one), as written in the program (None for a model loaded from a weight file,
    which holds no program). `hook` and `name` are the head's names in the TransformerLens export
    (`hardwire export --to transformer-lens`), whose blocks count from 0.

    >>> import hardwire
    >>> hardwire.compile_file("programs/reverse.hw").heads[1]
    Head(layer=3, index=0, selector='select(indices, opp, ==)', value='tokens', output='reversed')
    """
    layer: int
    index: int
    selector: str | None = None
    value: str | None = None
    output: str | None = None

    @property
    def hook(self) -> str:
        """The TransformerLens hook of this head's attention pattern (index it with [:, index]).

        >>> import hardwire
        >>> hardwire.compile_file("programs/reverse.hw").heads[1].hook
        'blocks.2.attn.hook_pattern'
        """
        return f"blocks.{self.layer - 1}.attn.hook_pattern"

    @property
    def name(self) -> str:
        """The head as TransformerLens tooling names it: L{block}H{head}, both from 0.

        >>> import hardwire
        >>> [h.name for h in hardwire.compile_file("programs/reverse.hw").heads]
        ['L0H0', 'L2H0']
        """
        return f"L{self.layer - 1}H{self.index}"


def heads_from_config(config: dict) -> list[Head]:
    """The heads of a weight file's layers, without their source text (a loaded model holds no program)."""
    return [Head(i + 1, h) for i, layer in enumerate(config["layers"]) for h in range(layer["heads"])]


def heads_from_program(prog, config: dict) -> list[Head]:
    """Every head with its selector text, placed as hardwire/explain/walk.py places blocks (which is how wire.py packs
    them), checked against the compiled layers' head counts."""
    from hardwire.compiler.combine import combine_selectors
    from hardwire.compiler.core.sops import Width
    from hardwire.compiler.fuse import fuse_maps
    from hardwire.compiler.lower import ATTN
    from hardwire.explain.text import NAME, definition, ref, remember_text, selector
    from hardwire.explain.walk import place
    base = copy.deepcopy(prog)
    remember_text(base)
    placed = sorted((p for p in place(fuse_maps(combine_selectors(base)))[1] if p.block.kind == ATTN),
                    key=lambda p: (p.layer, p.head))
    heads = []
    for p in placed:
        s = p.block.sop
        if isinstance(s, Width):
            heads.append(Head(p.layer, p.head, selector(s.selector), None,
                              s.label if NAME.match(s.label) else definition(s)[0]))
        else:
            heads.append(Head(p.layer, p.head, selector(s.selector), ref(s.value), s.label))
    if [(h.layer, h.index) for h in heads] != [(h.layer, h.index) for h in heads_from_config(config)]:
        raise HardwireError("internal: the heads placed differ from the compiled layers'; please report this")
    return heads
