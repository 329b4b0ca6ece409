"""State registers, the loop block and generation: the parts of checking that give a program time.

Mixed into the Elaborator (needs err, expr, as_sop, guard_of, lin_of, word_sop, word_mux, onehot_mux).
A loop's updates are kept as written (for the interpreter) and as commits (for the compiler): each
register rewritten by a mux whose first case keeps it while the halt test holds.
"""
from __future__ import annotations

import lark
from hardwire.compiler.check.messages import called, shown, shown_set, suggest
from hardwire.compiler.check.words import Cases
from hardwire.compiler.core.sops import ONEHOT, WORD, Const, Lin, Loop, Register, SOp, Tokens, sort_values, value_key


class LoopOps:
    def state(self, node) -> None:
        """`state r = init` (a word) or `state r in {v, ...} = init` (one-hot over the listed values)."""
        name_tok, *literals, body = node.children
        literals = self.set_items(literals)
        name = str(name_tok)
        if name in self.env:
            raise self.err(f"{name!r} is defined twice", name_tok)
        self.not_a_function(name, name_tok)
        if self.prog.loop is not None:
            raise self.err("declare `state` registers before the loop", node)
        from hardwire.compiler.lower import feature_of
        m = node.meta
        if literals:
            init = self.as_sop(self.expr(body), body)
            extra = [v for v in init.values if value_key(v) not in {value_key(x) for x in literals}]
            if init.encoding != ONEHOT or extra:
                got = f"can be {shown(extra[0])}" if extra else f"{called(init, 'it')} is not a one-hot value"
                raise self.err(f"register {name!r} holds {shown_set(literals, 12)}, but its initial value {got}", body)
            values, enc, bits = sort_values(literals), ONEHOT, 0
        else:
            init = self.word_sop(self.expr(body), body)
            values, enc, bits = (), WORD, init.bits
        if not isinstance(init, (Const, Tokens)) and feature_of(init) not in ("token", "position"):
            raise self.err("a register starts from the input or a constant: a function of tokens or of "
                           "indices alone, e.g. `state mem = tokens` or `state pc = word(0)`", body)
        reg = Register(name, values, enc, m.line, m.column, bits, init=init)
        self.env[name] = reg
        self.registers.append(reg)

    def loop(self, node) -> None:
        until, *body = node.children
        if self.prog.loop is not None:
            raise self.err("a program has one loop", node)
        if not self.registers:
            raise self.err("a loop needs state: declare registers first, e.g. `state pc = word(0)`", node)
        lp = Loop(registers=list(self.registers))
        self.prog.loop = lp
        outer = dict(self.env)
        pending: dict[str, tuple] = {}
        for st in body:
            if st is None:
                continue
            if st.data == "assign":
                name_tok, e = st.children
                name = str(name_tok)
                if name in self.env:
                    raise self.err(f"{name!r} is defined twice", name_tok)
                self.not_a_function(name, name_tok)
                v = self.expr(e)
                if isinstance(v, SOp) and v.label.startswith("_"):
                    v.label = name
                self.env[name] = v
            elif st.data == "update":
                name_tok, e = st.children
                reg = self.env.get(str(name_tok))
                if not isinstance(reg, Register):
                    regs = [r.label for r in self.registers]
                    raise self.err(f"{name_tok!s} is not a state register; `:=` updates registers only"
                                   f"{suggest(str(name_tok), regs)}", name_tok)
                if reg.label in pending:
                    raise self.err(f"register {reg.label!r} is updated twice in the loop", name_tok)
                if reg.encoding == ONEHOT:
                    cases = self.onehot_cases(e)
                else:
                    v = self.expr(e)
                    cases = v.cases if isinstance(v, Cases) else ((None, self.lin_of(v, e)),)
                pending[reg.label] = (reg, cases, e)
            else:  # emit
                if lp.emit is not None:
                    raise self.err("a loop emits at most one value per pass", st)
                val, when = st.children
                v = self.word_sop(self.expr(val), val)
                w = None if when is None else self.guard_of(self.expr(when), when)
                lp.emit = (v, w)
        halt = None
        if until is not None:
            h = self.expr(until)
            if isinstance(h, bool):
                raise self.err("the halt condition is a constant", until)
            halt = self.guard_of(h, until)
        lp.halt = halt
        frozen = ((halt, None),) if halt is not None else ()
        for label, (reg, cases, e) in pending.items():
            if reg.encoding == ONEHOT:
                lp.updates[label] = self.as_sop(self.expr(e), e)
                keep = tuple((g, reg) for g, _ in frozen)
                lp.commits.append(self.onehot_mux(keep + cases, e, target=reg))
                continue
            lp.updates[label] = self.word_mux(cases, e)
            keep = tuple((g, Lin(((1, reg),), 0)) for g, _ in frozen)
            lp.commits.append(self.word_mux(keep + cases, e, target=reg))
        flags = []
        if halt is not None:
            flags.append(("halted", 2, ((halt, Lin((), 1)), (None, Lin((), 0)))))
        if lp.emit is not None:
            v, w = lp.emit
            on = ((halt, Lin((), 0)),) if halt is not None else ()
            on += ((w, Lin((), 1)), (None, Lin((), 0))) if w is not None else ((None, Lin((), 1)),)
            flags.append(("emit_on", 2, on))
            flags.append(("emit_val", v.bits, ((None, Lin(((1, v),), 0)),)))
        for name, bits, cases in flags:
            reg = Register("__" + name, (), WORD, node.meta.line, node.meta.column, bits,
                           init=Const("0", (), WORD, bits=bits, value=0))
            lp.flags[name] = reg
            lp.registers.append(reg)
            lp.commits.append(self.word_mux(cases, node, target=reg, bits=bits))
        # names defined in the body are local to it; registers keep their final values after it
        self.env = {k: v for k, v in self.env.items() if k in outer}

    def check_word_generate(self, out, node) -> None:
        """`generate` in a `vocab word` program: the next token and the stop tokens are words of its width."""
        p = self.prog
        half = 1 << (p.word_bits - 1)
        if out.encoding == WORD:
            if out.bits != p.word_bits:
                raise self.err(f"output {p.generate!r} is a {out.bits}-bit word, but the tokens are "
                               f"{p.word_bits}-bit words", node)
        else:
            extra = [v for v in out.values
                     if isinstance(v, bool) or not isinstance(v, int) or not -half <= v < half][:1]
            if extra:
                raise self.err(f"output {p.generate!r} can be {shown(extra[0])}, which is not a {p.word_bits}-bit "
                               "word, so it cannot be the next token", node)
        bad = [v for v in p.stop if isinstance(v, bool) or not isinstance(v, int) or not -half <= v < half]
        if bad:
            raise self.err(f"stop token {shown(bad[0])} is not a {p.word_bits}-bit word", node)

    def check_generate(self, node) -> None:
        """`generate next`: a causal program whose output `next` is always a token of the vocabulary."""
        p = self.prog
        if not p.causal:
            raise self.err("a generating program must be `causal`: each next token may depend only on the prefix",
                           node)
        if p.loop is not None:
            raise self.err("a generating program cannot also loop (yet)", node)
        out = p.outputs.get(p.generate)
        vocab = {value_key(v) for v in p.vocab}  # by type and value: 1 is not the token true
        if out is None:
            raise self.err(f"generate names {p.generate!r}, but there is no `output {p.generate} = ...`"
                           f"{suggest(p.generate, p.outputs)}", node)
        if p.word_vocab:   # every word is a token: `next` must be a word of the same width, or integers in it
            self.check_word_generate(out, node)
            return
        if out.encoding == WORD:
            lo, hi = out.vrange if out.vrange is not None else (-(1 << (out.bits - 1)), (1 << (out.bits - 1)) - 1)
            extra = [v for v in range(lo, hi + 1) if value_key(v) not in vocab][:1]
        else:
            extra = [v for v in out.values if value_key(v) not in vocab]
        if extra:
            raise self.err(f"output {p.generate!r} can be {shown(extra[0])}, which is not in the vocabulary, so it "
                           "cannot be the next token", node)
        bad = [v for v in p.stop if value_key(v) not in vocab]
        if bad:
            raise self.err(f"stop token {shown(bad[0])} is not in the vocabulary", node)

    def onehot_cases(self, e) -> tuple:
        """An update `r := if c then x else ...` of a one-hot register, as mux cases (no lookup MLP)."""
        if isinstance(e, lark.Tree) and e.data == "if_op":
            c, x, y = e.children
            cond = self.expr(c)
            if not isinstance(cond, bool):
                return ((self.guard_of(cond, c), self.expr(x)),) + self.onehot_cases(y)
        return ((None, self.expr(e)),)

