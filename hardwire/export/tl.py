"""Export a compiled model as a TransformerLens 4.x native model: config.json, model.safetensors, vocab.json.

TransformerLens 4 has no HookedTransformer; a model built from a config and weights is
`TransformerBridge.boot_native(TransformerBridgeConfig)`, whose weights load from the HookedTransformer-style
state dict written here (embed.W_E, blocks.i.attn.W_Q [heads, d, d_head], ...) through
`transformer_lens.utilities.tl_checkpoint_conversion.convert_tl_checkpoint`. `load_bridge` does exactly that.
What maps to what, and what is refused, is in docs/export.md.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hardwire.compiler.core.errors import HardwireError
from hardwire.export.common import f32, one_pass, vocab_fields
from hardwire.export.tl_tokens import readout, reads_tokens, stop_ids, write_tokenizer

TL_VERSION = "4.3.0"
ATTN_SCALE = 2.0  # TL refuses attn_scale 1 for d_head > 1; W_Q is doubled instead (a power of 2: bit-exact)
MAX_WORD_BITS = 16  # a word vocabulary becomes a lookup table of 2**bits + 1 rows


def refusal(model, forward_only: bool = False) -> str | None:
    """Why the model cannot be a TransformerLens model (one line naming the block), or None."""
    cfg = model.config
    for i, layer in enumerate(cfg["layers"]):
        if layer.get("norm_eps") is not None:
            return (f"layer {i} has a LayerNorm over pairs of projected dims (layers.{i}.norm), a block "
                    "TransformerLens lacks; export it to ONNX instead (--to onnx)")
        if layer["heads"] and not layer["d_head"]:
            return f"layer {i} has {layer['heads']} heads of d_head 0, which TransformerLens cannot hold"
    generates = reads_tokens(model)  # TransformerLens's generate is its driver (export_tl_tokens.readout)
    for kind, what in (("loop", "a loop (its body repeats until a halt flag: a driver TransformerLens lacks)"),
                       ("generate", "generation of a value that is not one-hot (its decoder appends decoded "
                                    "values as tokens: a driver TransformerLens lacks)")):
        if kind in cfg and not forward_only and not (kind == "generate" and generates):
            return f"the program uses {what}; pass --forward-only to export its single forward pass"
    if cfg.get("word_vocab") and cfg["word_bits"] > MAX_WORD_BITS:
        return (f"`vocab word` with {cfg['word_bits']}-bit words would need a {2 ** cfg['word_bits'] + 1}-row token "
                f"table (at most {MAX_WORD_BITS} bits)")
    return None


def tl_config(model) -> dict:
    """TransformerBridgeConfig fields: every layer padded to the widest (zero heads, zero MLP units add 0). The
    tokenizer prepends BOS; a generating program's logits are over its tokens (`readout`), its stop tokens eos."""
    cfg = model.config
    layers = cfg["layers"]
    d_vocab = _token_table(model).shape[0]
    tokens_out = reads_tokens(model)
    extra = {"eos_token_id": stop_ids(model)} if tokens_out and stop_ids(model) else {}
    return {"model_name": f"hardwire-{cfg['program']}", "architecture": "TransformerLensNative",
            "d_model": cfg["d_model"], "n_layers": cfg["n_layers"], "n_ctx": cfg["max_len"] + 1,
            "n_heads": max([x["heads"] for x in layers] + [1]), "d_head": max([x["d_head"] for x in layers] + [1]),
            "d_mlp": max([x["d_mlp"] for x in layers] + [1]), "d_vocab": d_vocab,
            "d_vocab_out": d_vocab if tokens_out else cfg["d_model"], "act_fn": "relu", "normalization_type": None,
            "positional_embedding_type": "standard", "attention_dir": "causal" if cfg["causal"] else "bidirectional",
            "use_attn_scale": True, "attn_scale": ATTN_SCALE, "init_weights": False, "default_prepend_bos": True,
            "tokenizer_prepends_bos": True, "original_architecture": "hardwire", **extra}


def _token_table(model) -> np.ndarray:
    """W_E: embed.tokens, or for `vocab word` one row per word (row 0: BOS, row 1 + (w mod 2**bits): word w)."""
    tokens = f32(model.p("embed.tokens"))
    bits = model.p("embed.bits")
    if bits is None:
        return tokens
    import torch
    n = bits.shape[0]
    words = torch.arange(1 << n)
    tb = ((words[:, None] >> torch.arange(n)) & 1).to(bits.dtype)
    return np.concatenate([tokens[:1], f32(tb @ bits)])


def state_dict(model) -> dict[str, np.ndarray]:
    """HookedTransformer-format weights (what convert_tl_checkpoint reads), zero-padded to tl_config's sizes."""
    c = tl_config(model)
    d, h, dh, m = c["d_model"], c["n_heads"], c["d_head"], c["d_mlp"]
    w_u, b_u = readout(model, c["d_vocab"]) or (np.eye(d, dtype=np.float32), np.zeros(d, np.float32))
    sd = {"embed.W_E": _token_table(model), "pos_embed.W_pos": f32(model.position_table()),
          "unembed.W_U": w_u, "unembed.b_U": b_u}
    for i, layer in enumerate(model.config["layers"]):
        w = {n: np.zeros((h, d, dh), np.float32) for n in "QKV"}
        w["O"] = np.zeros((h, dh, d), np.float32)
        if layer["heads"]:
            k, e = layer["heads"], layer["d_head"]
            for n in "QKV":
                w[n][:k, :, :e] = f32(model.p(f"layers.{i}.attn.W_{n}"))
            w["Q"] *= ATTN_SCALE
            w["O"][:k, :e, :] = f32(model.p(f"layers.{i}.attn.W_O"))
        w_in, w_out = np.zeros((d, m), np.float32), np.zeros((m, d), np.float32)
        if layer["d_mlp"]:
            w_in[:, :layer["d_mlp"]] = f32(model.p(f"layers.{i}.mlp.W_in"))
            w_out[:layer["d_mlp"]] = f32(model.p(f"layers.{i}.mlp.W_out"))
        p = f"blocks.{i}."
        sd.update({p + f"attn.W_{n}": w[n] for n in "QKVO"})
        sd.update({p + f"attn.b_{n}": np.zeros((h, dh), np.float32) for n in "QKV"})
        sd.update({p + "attn.b_O": np.zeros(d, np.float32), p + "mlp.W_in": w_in, p + "mlp.W_out": w_out,
                   p + "mlp.b_in": np.zeros(m, np.float32), p + "mlp.b_out": np.zeros(d, np.float32)})
    return sd


def vocab(model) -> dict:
    """vocab.json: token ids, and how to read the outputs off the final residual (and what the logits are)."""
    word = bool(model.config.get("word_vocab"))
    tokens_out = reads_tokens(model)
    return {**vocab_fields(model, "hardwire-transformer-lens/2"),
            "word_ids": "1 + (word mod 2**word_bits)" if word else None,
            "residual": "unembed.hook_in in the cache: the final residual stream [B, T, d_model]",
            "stop_ids": stop_ids(model) if tokens_out else None,
            "logits": ("next-token logits [B, T, d_vocab]: the generated output's one-hot dims, one per token"
                       if tokens_out else "the final residual stream [B, T, d_model] (W_U is the identity)")}


def export(model, folder: str, forward_only: bool = False) -> dict:
    """Write config.json, model.safetensors and vocab.json into `folder` (created if missing)."""
    why = refusal(model, forward_only)
    if why:
        raise HardwireError(f"cannot export to TransformerLens: {why}")
    from safetensors.numpy import save_file
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise HardwireError("-o names a file; transformer-lens export writes a folder", folder)
    if not out.parent.is_dir():
        raise HardwireError(f"the folder {out.parent} does not exist; create it first", folder)
    try:
        out.mkdir(exist_ok=True)
        (out / "config.json").write_text(json.dumps(tl_config(model), indent=1) + "\n")
        save_file(state_dict(model), str(out / "model.safetensors"), metadata={"format": "pt"})
        (out / "vocab.json").write_text(json.dumps(vocab(model), indent=1, sort_keys=True) + "\n")
        tokenizer_files = write_tokenizer(model, out)
    except OSError as e:
        raise HardwireError(f"cannot write the export: {e.strerror}", folder) from None
    c = tl_config(model)
    return {"program": model.config["program"], "target": "transformer-lens", "output": folder,
            "files": ["config.json", "model.safetensors", "vocab.json", *tokenizer_files], "n_layers": c["n_layers"],
            "n_heads": c["n_heads"], "d_head": c["d_head"], "d_mlp": c["d_mlp"], "d_vocab": c["d_vocab"],
            "one_pass": one_pass(model.config)}


def load_bridge(folder: str, device: str = "cpu"):
    """The exported model as a TransformerLens TransformerBridge (TL 4.x): boot_native with the export's tokenizer
    (compiler/export_tl_tokens.load_tokenizer), then the weights."""
    try:
        import torch
        from safetensors.torch import load_file
        from transformer_lens.config import TransformerBridgeConfig
        from transformer_lens.model_bridge import TransformerBridge
        from transformer_lens.model_bridge.sources import native  # noqa: F401 (attaches boot_native)
        from transformer_lens.utilities.tl_checkpoint_conversion import convert_tl_checkpoint
    except ImportError:
        raise HardwireError("loading a TransformerLens export needs transformer-lens: "
                            "pip install hardwire[export]") from None
    raw = json.loads((Path(folder) / "config.json").read_text())
    cfg = TransformerBridgeConfig.from_dict({**raw, "device": device, "dtype": torch.float32})
    tokenizer = None
    if (Path(folder) / "tokenizer.json").is_file():
        from hardwire.export.tl_tokens import load_tokenizer
        tokenizer = load_tokenizer(folder)
    bridge = TransformerBridge.boot_native(cfg, tokenizer=tokenizer, device=device, dtype=torch.float32)
    sd = load_file(str(Path(folder) / "model.safetensors"))
    result = bridge.load_state_dict(convert_tl_checkpoint(sd, bridge.cfg), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    if raw.get("eos_token_id"):  # the stop tokens; TransformerBridgeConfig.from_dict drops the field
        bridge.cfg.eos_token_id = raw["eos_token_id"]
    return bridge.eval()


def run(folder: str, ids, lengths, word_bits: int = 0):
    """The exported model's final residual stream (`unembed.hook_in`) for one batch of hardwire ids [B, T]."""
    import torch
    ids, lengths = torch.as_tensor(ids), torch.as_tensor(lengths)
    if word_bits:  # hardwire feeds the words; the TL table has BOS at 0 and word w at 1 + (w mod 2**bits)
        ids = 1 + (ids & ((1 << word_bits) - 1))
        ids[:, 0] = 0
    mask = (torch.arange(ids.shape[1])[None, :] < lengths[:, None]).long()
    with torch.no_grad():
        _, cache = load_bridge(folder).run_with_cache(ids, attention_mask=mask, names_filter="unembed.hook_in")
    return cache["unembed.hook_in"].numpy()


def require() -> None:
    """Refuse (one line) unless a TransformerLens 4.x is installed: the format written is 4.x's."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        found = version("transformer-lens")
    except PackageNotFoundError:
        raise HardwireError("exporting to TransformerLens needs transformer-lens: pip install hardwire[export]") \
            from None
    if found.split(".")[0] != TL_VERSION.split(".")[0]:
        raise HardwireError(f"transformer-lens {found} is installed, but this exporter targets {TL_VERSION} "
                            "(TransformerBridge.boot_native): pip install hardwire[export]")
