"""The TransformerLens export's tokenizer, next-token readout and decoder: what lets a TransformerBridge take
text (`to_tokens("a b c")`, `to_str_tokens`, `run_with_cache("a b c")`, `generate`) and what turns its outputs
back into the program's values.

The tokenizer is a Hugging Face `PreTrainedTokenizerFast` (a `tokenizers` WordLevel model split on whitespace,
saved as tokenizer.json + tokenizer_config.json, so `AutoTokenizer.from_pretrained(folder)` loads it too): one
word per token, written as `hardwire run --input` reads it (`a`, `3`, `true`, `-5` for a word), BOS `<bos>` (id 0,
also the padding id) prepended by its post-processor. `load_tokenizer` gives a subclass that refuses an unknown
word in the CLI's words instead of the `tokenizers` library's "Missing [UNK] token". docs/export.md shows it.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hardwire.compiler.core.errors import HardwireError

BOS = "<bos>"


def token_words(model) -> dict[str, int]:
    """Each token's word (as `hardwire run --input` reads it) -> its id in the export's W_E (BOS "<bos>" -> 0).

    A token that the CLI's reading would take for another (the string "1" beside the integer 1) gets its
    serialized key instead ('"1"'), so every id has a word and no word is ambiguous.
    """
    from hardwire.harness import parse_input
    cfg = model.config
    words = {BOS: 0}
    if cfg.get("word_vocab"):
        half = 1 << (cfg["word_bits"] - 1)
        words.update({str(w): 1 + (w % (2 * half)) for w in range(-half, half)})
        return words
    from hardwire.compiler.artifact import from_json
    for key, tid in sorted(model.token_id.items(), key=lambda kv: kv[1]):
        tok = from_json(json.loads(key))
        plain = "true" if tok is True else "false" if tok is False else str(tok)
        reads_back = plain.split() == [plain] and _same(parse_input(plain, cfg["vocab"])[0], tok)
        word = plain if reads_back and plain not in words else key
        if word in words:
            raise HardwireError(f"cannot export to TransformerLens: two tokens would both be written {word!r}")
        words[word] = tid
    return words


def _same(a, b) -> bool:
    from hardwire.compiler.core.sops import value_key
    return value_key(a) == value_key(b)


def write_tokenizer(model, folder: Path) -> list[str]:
    """tokenizer.json and tokenizer_config.json (the files `PreTrainedTokenizerFast.from_pretrained` reads)."""
    tok = build_tokenizer(token_words(model), model.config)
    tok.save_pretrained(str(folder))
    return ["tokenizer.json", "tokenizer_config.json"]


def build_tokenizer(words: dict[str, int], cfg: dict, cls=None):
    """The PreTrainedTokenizerFast for `words`: BOS prepended, padding with BOS (id 0) on the right."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast
    core = Tokenizer(models.WordLevel(vocab=words, unk_token=BOS))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", special_tokens=[(BOS, 0)])
    # eos is BOS: without one TransformerLens adds an "<|endoftext|>" of its own, and a stop token as eos would be
    # a special token that decoding drops; generate stops at config.json's eos_token_id (the stop tokens) instead
    return (cls or PreTrainedTokenizerFast)(tokenizer_object=core, bos_token=BOS, pad_token=BOS, eos_token=BOS,
                                             padding_side="right",
                                             model_max_length=cfg["max_len"] + 1)


def stop_words(words: dict[str, int], cfg: dict) -> list[str]:
    """The words of a generating program's stop tokens (none for a program without `stop`)."""
    from hardwire.compiler.artifact import from_json
    from hardwire.compiler.core.sops import value_key
    if "generate" not in cfg:
        return []
    by_key = {}
    for w in words:
        if w != BOS:
            by_key[_key_of(w, cfg)] = w
    return [by_key[value_key(from_json(v))] for v in cfg["generate"]["stop"] if value_key(from_json(v)) in by_key]


def _key_of(word: str, cfg: dict):
    """The value_key of the token a word stands for."""
    from hardwire.compiler.artifact import from_json
    from hardwire.compiler.core.sops import value_key
    from hardwire.harness import parse_input
    if word.startswith(('"', "{")):
        try:
            return value_key(from_json(json.loads(word)))
        except ValueError:
            pass
    return value_key(parse_input(word, cfg["vocab"], bool(cfg.get("word_vocab")))[0])


def stop_ids(model) -> list[int]:
    """The ids of a generating program's stop tokens (TransformerBridgeConfig.eos_token_id)."""
    words = token_words(model)
    return [words[w] for w in stop_words(words, model.config)]


def reads_tokens(model) -> bool:
    """Whether the model generates a one-hot output, which a linear readout turns into next-token logits."""
    cfg = model.config
    if "generate" not in cfg:
        return False
    out = model.outputs[cfg["generate"]["output"]]
    return out["encoding"] == "onehot" and bool(out["dims"])


def readout(model, d_vocab: int) -> tuple[np.ndarray, np.ndarray] | None:
    """For a generating program, W_U [d_model, d_vocab] and b_U whose logits pick the next token: the logit of
    token t is the residual dim of the generated output's value t (one-hot, so argmax is the decoded value; a
    value that is no token goes to id 0, as runtime/generate.py feeds it), every other token -1. None otherwise,
    or when the generated output is not one-hot (then W_U stays the identity)."""
    from hardwire.compiler.artifact import from_json
    from hardwire.compiler.core.sops import value_key
    if not reads_tokens(model):
        return None
    cfg = model.config
    out = model.outputs[cfg["generate"]["output"]]
    ids = {value_key(from_json(json.loads(k))): i for k, i in model.token_id.items()}
    w = np.zeros((cfg["d_model"], d_vocab), np.float32)
    b = np.full(d_vocab, -1.0, np.float32)
    for dim, v in zip(out["dims"], out["values"]):
        t = ids.get(value_key(from_json(v)), 0)
        w[dim, t] = 1.0
        b[t] = 0.0
    return w, b


def load_tokenizer(folder: str):
    """The export's tokenizer, as a PreTrainedTokenizerFast that names an unknown word in the CLI's words."""
    from transformers import PreTrainedTokenizerFast

    class HardwireTokenizer(PreTrainedTokenizerFast):
        """The export's WordLevel tokenizer; a word not in the vocabulary is a HardwireError, not "Missing [UNK]"."""

        def __call__(self, text=None, *args, **kwargs):
            for s in [text] if isinstance(text, str) else text if isinstance(text, (list, tuple)) else []:
                if isinstance(s, str):
                    if len(s.split()) > self.max_tokens:
                        raise HardwireError(f"input has {len(s.split())} tokens but max_len is {self.max_tokens}")
                    for i, w in enumerate(s.split()):
                        if w not in self.vocab_words:
                            raise HardwireError(f"token {w!r} at position {i} is not in the vocabulary of "
                                                f"{self.program} ({', '.join(self.shown)})")
            return super().__call__(text, *args, **kwargs)

    side = json.loads((Path(folder) / "vocab.json").read_text())
    tok = HardwireTokenizer.from_pretrained(folder)
    tok.init_kwargs["add_bos_token"] = True  # its post-processor prepends BOS: TransformerLens keeps it as it is
    tok.vocab_words = set(tok.get_vocab())
    tok.program, tok.max_tokens = side["program"], side["config"]["max_len"]
    words = sorted((w for w in tok.vocab_words if w != BOS), key=tok.get_vocab().get)
    tok.shown = words[:8] + (["..."] if len(words) > 8 else [])
    return tok


def side_of(where) -> dict:
    """vocab.json of an export folder (or the dict itself)."""
    if isinstance(where, dict):
        return where
    return json.loads((Path(where) / "vocab.json").read_text())


def decode(where, outputs, tokens) -> list[dict[str, list]]:
    """The bridge's outputs back to the program's values, as `hardwire run` prints them: one {output: values}
    per row, at the row's own positions. `where`: the export folder (or its vocab.json as a dict); `outputs`: an
    ActivationCache from run_with_cache, or the final residual [B, T, d_model] (for a program whose logits are
    the residual, the logits); `tokens`: the ids fed ([B, T], BOS first, padded with 0 on the right)."""
    import torch

    from hardwire.compiler.artifact import from_json
    from hardwire.runtime.model import decode_column
    side = side_of(where)
    if hasattr(outputs, "keys") and "unembed.hook_in" in outputs.keys():
        outputs = outputs["unembed.hook_in"]
    x = torch.as_tensor(outputs).detach().float().cpu()
    ids = torch.as_tensor(tokens).cpu()
    if ids.dim() == 1:
        ids, x = ids[None], x if x.dim() == 3 else x[None]
    lengths = 1 + (ids[:, 1:] != 0).sum(-1)
    rows = []
    for b, n in enumerate(int(v) - 1 for v in lengths):
        row = {}
        for name, out in side["outputs"].items():
            if not out["dims"]:
                row[name] = [from_json(out.get("value", out["values"][0] if out["values"] else None))] * n
            else:
                row[name] = decode_column(x[b, 1:n + 1][:, out["dims"]], out)
        rows.append(row)
    return rows


def tokens_to_values(where, ids) -> list:
    """Token ids (a row, or a batch of rows: what `generate` returns as tokens) back to the program's tokens, BOS
    and padding dropped: `[0, 2, 1, 3]` -> `[1, 0, '=']`."""
    import torch

    from hardwire.compiler.artifact import from_json
    side = side_of(where)
    t = torch.as_tensor(ids).cpu()
    if t.dim() == 2:
        return [tokens_to_values(side, r) for r in t]
    if side.get("word_bits"):
        bits = side["word_bits"]
        return [((i - 1) ^ (1 << (bits - 1))) - (1 << (bits - 1)) for i in t.tolist() if i != 0]
    by_id = {i: from_json(json.loads(k)) for k, i in side["token_ids"].items()}
    return [by_id[i] for i in t.tolist() if i != 0]
