"""Derive the Hugging Face CLIP tokenizer files from the BPE file open_clip ships.

The CLIP BPE vocabulary (used by SD 1.5's and SDXL's text encoders) is the file
``open_clip/bpe_simple_vocab_16e6.txt.gz`` in the ``open_clip_torch`` wheel (the same file
OpenAI's ``clip`` package carries). This script rebuilds, exactly as CLIP's ``SimpleTokenizer``
does, the token -> id table and the merge list, and writes them in the layout
``transformers.CLIPTokenizer`` reads (``vocab.json``, ``merges.txt``, ``tokenizer_config.json``,
``special_tokens_map.json``).

Usage (no network, no open_clip install needed: the wheel is just read as a zip)::

    pip download --no-deps open_clip_torch -d /tmp/oc
    python resources/tokenizers/derive_clip_vocab.py /tmp/oc/open_clip_torch-*.whl

The argument may also be the ``.txt.gz`` file itself. Output goes to ``resources/tokenizers/clip/``
(the single source), and byte-identical copies of ``vocab.json``/``merges.txt`` go into the
tokenizer folders of the shipped pipeline configs (``resources/models/*/tokenizer*``), because
``from_single_file(config=<dir>)`` loads each tokenizer from its own subfolder of ``<dir>``.
Pass ``--no-copies`` to write only ``resources/tokenizers/clip/``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import zipfile
from pathlib import Path

BPE_MEMBER = "open_clip/bpe_simple_vocab_16e6.txt.gz"
BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
VOCAB_SIZE = 49408

HERE = Path(__file__).resolve().parent
RESOURCES = HERE.parent
CLIP_DIR = HERE / "clip"
# Pipeline tokenizer folders -> pad token (SDXL's second tokenizer pads with "!", id 0).
PIPELINE_TOKENIZER_DIRS = {
    RESOURCES / "models" / "sd15" / "tokenizer": EOS,
    RESOURCES / "models" / "sdxl" / "tokenizer": EOS,
    RESOURCES / "models" / "sdxl" / "tokenizer_2": "!",
}


def bytes_to_unicode() -> dict[int, str]:
    """CLIP's (and GPT-2's) reversible byte -> printable unicode character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def read_bpe_text(source: Path) -> str:
    if source.suffix == ".whl" or zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as zf:
            data = zf.read(BPE_MEMBER)
    else:
        data = source.read_bytes()
    return gzip.decompress(data).decode("utf-8")


def derive(bpe_text: str) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Return (vocab token->id, merges) as CLIP's SimpleTokenizer builds them."""
    lines = bpe_text.split("\n")
    merges = [tuple(line.split()) for line in lines[1 : 49152 - 256 - 2 + 1]]
    if not all(len(m) == 2 for m in merges):
        raise ValueError("unexpected BPE file: a merge line does not hold exactly two symbols")
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab.extend("".join(m) for m in merges)
    vocab.extend([BOS, EOS])
    encoder = {tok: i for i, tok in enumerate(vocab)}
    if len(encoder) != VOCAB_SIZE or len(vocab) != VOCAB_SIZE:
        raise ValueError(f"derived vocabulary has {len(encoder)} tokens, expected {VOCAB_SIZE}")
    return encoder, merges  # type: ignore[return-value]


def _added(content: str) -> dict:
    return {"content": content, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False}


def tokenizer_config(pad_token: str) -> dict:
    """tokenizer_config.json as in openai/clip-vit-large-patch14 (and SD/SDXL repos)."""
    return {
        "add_prefix_space": False,
        "bos_token": {"__type": "AddedToken", **_added(BOS)},
        "do_lower_case": True,
        "eos_token": {"__type": "AddedToken", **_added(EOS)},
        "errors": "replace",
        "model_max_length": 77,
        "pad_token": pad_token,
        "tokenizer_class": "CLIPTokenizer",
        "unk_token": {"__type": "AddedToken", **_added(EOS)},
    }


def special_tokens_map(pad_token: str) -> dict:
    return {
        "bos_token": _added(BOS),
        "eos_token": _added(EOS),
        "pad_token": _added(pad_token) if pad_token != EOS else EOS,
        "unk_token": _added(EOS),
    }


def _dump(obj: dict, path: Path) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_tokenizer_dir(out: Path, vocab_bytes: bytes, merges_bytes: bytes, pad_token: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.json").write_bytes(vocab_bytes)
    (out / "merges.txt").write_bytes(merges_bytes)
    _dump(tokenizer_config(pad_token), out / "tokenizer_config.json")
    _dump(special_tokens_map(pad_token), out / "special_tokens_map.json")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", type=Path, help="open_clip_torch wheel, or bpe_simple_vocab_16e6.txt.gz")
    ap.add_argument("--out", type=Path, default=CLIP_DIR, help=f"output folder (default {CLIP_DIR})")
    ap.add_argument("--no-copies", action="store_true", help="do not refresh the pipeline tokenizer folders")
    args = ap.parse_args(argv)

    encoder, merges = derive(read_bpe_text(args.source))
    vocab_bytes = (json.dumps(encoder, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
    merges_bytes = ("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges)).encode("utf-8")

    write_tokenizer_dir(args.out, vocab_bytes, merges_bytes, EOS)
    print(f"wrote {args.out} ({len(encoder)} tokens, {len(merges)} merges)")
    if not args.no_copies:
        for folder, pad in PIPELINE_TOKENIZER_DIRS.items():
            write_tokenizer_dir(folder, vocab_bytes, merges_bytes, pad)
            print(f"wrote {folder} (pad_token {pad!r})")


if __name__ == "__main__":
    main()
