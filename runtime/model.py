"""A plain transformer (no biases, ReLU MLPs, hard-scaled softmax heads, pair LayerNorms) that runs any artifact."""
from __future__ import annotations

import torch
from hardwire.compiler.artifact import from_json, value_id
from hardwire.compiler.core.errors import HardwireError

ATTENTION_BYTES = 1 << 26   # scores a pass holds at once when it need not return the attention pattern
MLP_BYTES = 1 << 26         # hidden units an MLP holds at once (reverse at max_len 256 has 65,536 of them)
GRID_BYTES = 1 << 24        # distances a scalar decode holds at once when its grid is not increasing


class Transformer(torch.nn.Module):
    def __init__(self, tensors: dict[str, torch.Tensor], config: dict, labels: list[str], outputs: dict):
        super().__init__()
        self.config, self.labels, self.outputs = config, labels, outputs
        self.w = torch.nn.ParameterDict({k.replace(".", "__"): torch.nn.Parameter(v, requires_grad=False)
                                         for k, v in tensors.items()})
        self.token_id = {value_id(from_json(v)): i + 1 for i, v in enumerate(config["vocab"])}

    def p(self, name: str) -> torch.Tensor | None:
        key = name.replace(".", "__")
        return self.w[key] if key in self.w else None

    def embed(self, ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The residual stream before layer 0, and the attention mask [B, T, T] (keys present, causal)."""
        b, t = ids.shape
        x = self.embed_tokens(ids)
        pos = torch.arange(t, device=ids.device)
        mask = (pos[None, None, :] < lengths[:, None, None]).expand(b, t, t)
        if self.config["causal"]:
            mask = mask & (pos[None, :, None] >= pos[None, None, :])
        return x, mask

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        """Token plus position embeddings: [B, T] ids -> [B, T, D]."""
        b, t = ids.shape
        bits = self.p("embed.bits")
        if bits is None:
            x = self.p("embed.tokens")[ids]
        else:  # `vocab word`: a token is embedded by its two's complement bits
            k = torch.arange(bits.shape[0], device=ids.device)
            tb = ((ids[..., None] >> k) & 1).to(bits.dtype)
            tb[:, 0] = 0
            x = tb @ bits + self.p("embed.tokens")[0] * (torch.arange(t, device=ids.device) == 0)[None, :, None]
        return x + self.positions(t).unsqueeze(0)

    def positions(self, t: int) -> torch.Tensor:
        """Position rows 0..t-1 [t, D]: the table's, or the formula's (`position_rows`)."""
        table = self.p("embed.positions")
        if table is not None:
            return table[:t]
        return self.position_rows(torch.arange(t, device=self.p("embed.position_form").device))

    def position_rows(self, p: torch.Tensor) -> torch.Tensor:
        """The position rows at positions p ([...] long -> [..., D]): the table's, or embed.position_form's, row
        i + 1 = form[0] + i * form[1] (i the index, in the model's dtype; exact for integers below 2^24 in
        float32, 2^53 in float64) and BOS's row 0 (compiler/wire.position_form)."""
        table = self.p("embed.positions")
        if table is not None:
            return table[p]
        f = self.p("embed.position_form")
        row = f[0] + (p - 1).clamp_min(0).to(f.dtype)[..., None] * f[1]
        return torch.where((p > 0)[..., None], row, torch.zeros((), dtype=f.dtype, device=f.device))

    def position_table(self) -> torch.Tensor:
        """All max_len + 1 position rows, as the exports store them: a formula written out (refused, with its size,
        past artifact.position_table's cap)."""
        table = self.p("embed.positions")
        if table is not None:
            return table
        from hardwire.compiler.artifact import position_table
        form = self.p("embed.position_form").detach().cpu()
        rows = position_table({"embed.position_form": form.numpy()}, self.config["max_len"] + 1)
        return torch.from_numpy(rows).to(form.dtype)

    @property
    def d_model(self) -> int:
        return self.p("embed.tokens").shape[1]

    def embed_step(self, ids: torch.Tensor) -> torch.Tensor:
        """The token embeddings of one new (non-BOS) token per row: [B] ids (for `vocab word`, the words
        themselves) -> [B, D], positions not added."""
        bits = self.p("embed.bits")
        if bits is None:
            return self.p("embed.tokens")[ids]
        k = torch.arange(bits.shape[0], device=ids.device)
        return ((ids[:, None] >> k) & 1).to(bits.dtype) @ bits

    def packed(self, i: int):
        """Layer i's weights as the forward pass uses them: Q, K, V in one [d, 3*h*dh] matrix."""
        cache = self.__dict__.setdefault("_packed", {})
        key = (i, self.w[next(iter(self.w))].device, self.w[next(iter(self.w))].dtype)
        if key not in cache:
            wq = self.p(f"layers.{i}.attn.W_Q")
            qkv = wo = None
            if wq is not None:
                h, d, e = wq.shape
                qkv = torch.cat([self.p(f"layers.{i}.attn.W_{n}").permute(1, 0, 2).reshape(d, h * e)
                                 for n in "QKV"], dim=1)
                wo = self.p(f"layers.{i}.attn.W_O").reshape(h * e, d)
            cache[key] = (qkv, wo, self.p(f"layers.{i}.mlp.W_in"), self.p(f"layers.{i}.mlp.W_out"))
        return cache[key]

    def layer(self, x: torch.Tensor, mask: torch.Tensor, i: int, keep_attention: bool = True):
        """One layer: hard-scaled softmax heads, then a ReLU MLP, each added to the residual.

        Returns the new residual and the attention pattern [B, H, T, T]. With keep_attention=False the pattern
        is not returned, and the queries run in chunks whose scores take at most ATTENTION_BYTES (or one query
        each): each query's softmax is its own, so a long input needs O(T) memory per query, not O(T^2)."""
        att = None
        qkv, wo, w_in, w_out = self.packed(i)
        if qkv is not None:
            b, t, _ = x.shape
            h = self.config["layers"][i]["heads"]
            q, k, v = (x @ qkv).view(b, t, 3, h, -1).permute(2, 0, 3, 1, 4)  # each [b, h, t, dh]
            step = t if keep_attention else max(1, min(t, ATTENTION_BYTES // (b * h * t * x.element_size())))
            parts = []
            for a in range(0, t, step):
                scores = (q[:, :, a:a + step] @ k.transpose(-1, -2)).masked_fill(~mask[:, None, a:a + step],
                                                                                   float("-inf"))
                att = torch.softmax(scores, dim=-1)
                parts.append(att @ v)
            z = parts[0] if len(parts) == 1 else torch.cat(parts, 2)
            x = x + z.transpose(1, 2).reshape(b, t, -1) @ wo
            att = att if keep_attention else None
        return self.mlp(x, i), att

    def mlp(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """Layer i's position-wise slot: the ReLU MLP and, beside it, any LayerNorms, both read the same x."""
        _, _, w_in, w_out = self.packed(i)
        y = x
        if w_in is not None:
            rows = x.reshape(-1, x.shape[-1])
            step = max(1, MLP_BYTES // (w_in.shape[1] * x.element_size()))
            if rows.shape[0] <= step:
                y = y + torch.relu(x @ w_in) @ w_out
            else:  # positions in chunks: the hidden units of every position at once would be [B*T, d_mlp]
                z = torch.empty_like(rows)
                for a in range(0, rows.shape[0], step):
                    z[a:a + step] = torch.relu(rows[a:a + step] @ w_in) @ w_out
                y = y + z.view_as(x)
        n_in = self.p(f"layers.{i}.norm.W_in")
        if n_in is not None:
            eps = torch.tensor(self.config["layers"][i]["norm_eps"], dtype=x.dtype, device=x.device)
            y = y + layer_norm_pairs(x @ n_in, eps) @ self.p(f"layers.{i}.norm.W_out")
        return y

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, trace: bool = False):
        """ids: [B, T] with BOS at 0; returns the final residual (and every layer's, with attention).

        A program with a loop runs its body once here; runtime.loop runs it until it halts.
        """
        x, mask = self.embed(ids, lengths)
        residuals, patterns = [x], []
        for i in range(self.config["n_layers"]):
            x, att = self.layer(x, mask, i, keep_attention=trace)
            if trace and att is not None:
                patterns.append(att)
            residuals.append(x)
        return (x, residuals, patterns) if trace else x

    def encode(self, batch: list[list]) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        rows = []
        word = cfg.get("word_vocab") and cfg.get("word_bits")
        fast: dict = {}   # (type, token) -> id, for the ints and strings of this batch (0 and False stay apart)
        for seq in batch:
            if not seq:
                raise HardwireError("the input is empty; give at least one token")
            if len(seq) > cfg["max_len"]:
                raise HardwireError(f"input has {len(seq)} tokens but max_len is {cfg['max_len']}")
            if cfg.get("exact_len") and len(seq) != cfg["max_len"]:
                raise HardwireError(f"input has {len(seq)} tokens, but this model is `exact_len`: every input has "
                                    f"exactly {cfg['max_len']}")
            row = [0]
            for i, tok in enumerate(seq):
                if word:
                    half = 1 << (word - 1)
                    if isinstance(tok, bool) or not isinstance(tok, int) or not -half <= tok < half:
                        raise HardwireError(f"token {tok!r} at position {i} is not a {word}-bit word "
                                            f"[{-half}, {half - 1}]")
                    row.append(tok)
                    continue
                key = (type(tok), tok) if isinstance(tok, (int, str)) else None
                tid = fast.get(key) if key is not None else None
                if tid is None:
                    tid = self.token_id.get(token_key(tok))
                    if tid is None:
                        raise HardwireError(f"token {tok!r} at position {i} is not in the vocabulary {cfg['vocab']}")
                    if key is not None:
                        fast[key] = tid
                row.append(tid)
            rows.append(row)
        t = max(len(r) for r in rows)
        device = next(iter(self.w.values())).device
        ids = torch.tensor([r + [0] * (t - len(r)) for r in rows], device=device)
        lengths = torch.tensor([len(r) for r in rows], device=device)
        return ids, lengths

    def decode(self, x: torch.Tensor, lengths: torch.Tensor) -> list[dict[str, list]]:
        """Each row's outputs at its own positions. Every output is decoded for the whole batch at once (padding
        included, then dropped), so a large batch costs a few tensor operations per output, not per row."""
        b, t = x.shape[0], x.shape[1] - 1
        columns = {name: decode_column(x[:, 1:, out["dims"]].reshape(b * t, -1), out) if out["dims"] else None
                   for name, out in self.outputs.items()}
        results = []
        for bi, n in enumerate(int(n) - 1 for n in lengths.tolist()):
            row = {}
            for name, out in self.outputs.items():
                flat = columns[name]
                if flat is None:
                    values = out["values"]
                    row[name] = [from_json(out.get("value", values[0] if values else None))] * n
                else:
                    row[name] = flat[bi * t:bi * t + n]
            results.append(row)
        return results

    @torch.no_grad()
    def run(self, batch: list[list]) -> list[dict[str, list]]:
        """Decoded outputs for a batch of token lists (any lengths up to max_len)."""
        ids, lengths = self.encode(batch)
        return self.decode(self(ids, lengths), lengths)


def layer_norm_pairs(v: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """LayerNorm (no gain, no bias) over each consecutive pair of v's last dim, with one epsilon per pair.

    At eps = 0 a constant pair (variance 0: BOS, padding) gives 0 rather than 0/0; the checker proves the
    program's own positions never have variance 0.
    """
    g = v.view(*v.shape[:-1], -1, 2)
    c = g - g.mean(-1, keepdim=True)
    var = (c * c).mean(-1, keepdim=True) + eps[:, None]
    return torch.where(var > 0, c * torch.rsqrt(var.clamp_min(torch.finfo(v.dtype).tiny)), 0.0).view_as(v)


def decode_column(z: torch.Tensor, out: dict) -> list:
    """One output's (or register's) values from its residual dims at a run of positions (z: [N, dims]), as the
    program's values (Fraction, tuple, bool, ...: the header's typed JSON decoded by from_json)."""
    if out["encoding"] == "word":
        return decode_words(z)
    if out["encoding"] == "onehot":
        picks = z.argmax(-1).tolist()
    else:
        picks = nearest(z[:, 0], torch.tensor(out["grid"], dtype=z.dtype, device=z.device)).tolist()
    values = out["values"]
    if len(values) <= len(picks):   # decode each value once (from_json builds Fractions and tuples)
        decoded = [from_json(v) for v in values]
        return [decoded[j] for j in picks]
    return [from_json(values[j]) for j in picks]


def nearest(z: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """For each entry of z [N], the index of the nearest grid point, the first on a tie (as argmin of |z - grid|).

    An increasing grid (every scalar output's: its values sorted) is searched, O(N log G) time and O(N)
    memory; the full [N, G] distance matrix of a mean with 79,853 values over 131,072 positions was 41.9 GB.
    Any other grid takes argmin in chunks of GRID_BYTES."""
    if grid.numel() > 1 and bool((grid[1:] > grid[:-1]).all()):
        hi = torch.searchsorted(grid, z).clamp(1, grid.numel() - 1)
        lo = hi - 1
        d_lo, d_hi = (z - grid[lo]).abs(), (z - grid[hi]).abs()
        pick = torch.where(d_hi < d_lo, hi, lo)
        best = torch.minimum(d_lo, d_hi)
        # rounding can tie |z - g| for grid points below the pick (e.g. 0 and 5e-324): as argmin, take the
        # first. Those distances shrink towards the pick, so the first tie is found by bisection on [0, pick].
        a, b = torch.zeros_like(pick), pick
        while bool((a < b).any()):
            mid = (a + b) // 2
            tie = (z - grid[mid]).abs() <= best
            a, b = torch.where(tie, a, mid + 1), torch.where(tie, mid, b)
        return b
    step = max(1, GRID_BYTES // max(1, grid.numel() * z.element_size()))
    return torch.cat([(z[a:a + step, None] - grid[None, :]).abs().argmin(-1) for a in range(0, z.numel(), step)]) \
        if z.numel() else torch.zeros(0, dtype=torch.long, device=z.device)


def decode_words(z: torch.Tensor) -> list[int]:
    """[..., bits] of 0/1 (rounded) -> two's complement integers."""
    n = z.shape[-1]
    b = (z > 0.5).long()
    w = torch.tensor([1 << k for k in range(n - 1)] + [-(1 << (n - 1))], device=z.device)
    return (b * w).sum(-1).tolist()


def token_key(tok) -> str | None:
    """The key of token_id for an input token (None for something that is no program value)."""
    try:
        return value_id(tok)
    except TypeError:
        return None


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def from_compiled(model, device: str | None = None, dtype: torch.dtype = torch.float32) -> Transformer:
    tensors = {k: torch.tensor(v, dtype=dtype) for k, v in model.tensors.items()}
    return Transformer(tensors, model.config, model.labels, model.outputs).to(device or default_device())


def load(path: str, device: str | None = None, dtype: torch.dtype = torch.float32) -> Transformer:
    """Load a weight file written by `hardwire compile` (needs torch and safetensors only).

    Only safetensors is read: a pickle (e.g. from torch.save) is refused without being unpickled, and a .hw
    program is named as one. compiler/validate.py checks the header against itself and the tensors' dtypes and
    shapes before any tensor is read, then every weight's magnitude; a bad file is one HardwireError naming it.
    """
    import os

    from hardwire.compiler.validate import check_header, check_values, read_header, refuse_program
    from safetensors import SafetensorError, safe_open
    if os.path.isdir(path):
        raise HardwireError("is a folder, not a weight file", path)
    try:
        with open(path, "rb") as fh:
            magic = fh.read(9)  # safetensors: an 8-byte header length, then the JSON header's "{"
    except FileNotFoundError:
        raise HardwireError("no such weight file", path) from None
    except OSError as e:
        raise HardwireError(f"cannot read the weight file: {e.strerror}", path) from None
    if magic[8:9] != b"{" and magic.startswith((b"PK\x03\x04", b"\x80")):
        raise HardwireError("a pickle or zip file (e.g. from torch.save), not safetensors; hardwire reads "
                            "safetensors only and never unpickles", path)
    if magic[8:9] != b"{":
        refuse_program(path)
    try:
        with safe_open(path, framework="pt") as f:
            meta = read_header((f.metadata() or {}).get("hardwire", "{}"), path)
            check_header(meta, {k: (f.get_slice(k).get_dtype(), list(f.get_slice(k).get_shape())) for k in f.keys()},
                         path)
            stored = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise HardwireError(f"corrupt or foreign weight file ({str(e).splitlines()[0][:120]})", path) from None
    check_values(stored, path)
    tensors = {k: t.to(dtype) for k, t in stored.items()}
    return Transformer(tensors, meta["config"], meta["labels"], meta["outputs"]).to(device or default_device())
