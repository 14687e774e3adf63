"""Which characters are Chinese, which script a text is in, and traditional -> simplified.

Every rule about "is this Chinese" lives here, so the ingest, the tokenizer, the
question analysis and the follow-up rewriter agree on it. Only the standard library
and `opencc` (loaded on first use) are needed.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = [
    "CJK_CHAR_CLASS",
    "has_han",
    "is_cjk",
    "script_of",
    "to_simplified",
    "to_simplified_aligned",
    "to_simplified_chars",
]

# CJK ideographs: Extension A, the URO, compatibility ideographs, and the
# supplementary-plane extensions (B..H). Used inside regex character classes.
CJK_CHAR_CLASS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_CJK_RE = re.compile(f"[{CJK_CHAR_CLASS}]")

# A question is traditional when at least this share of its Chinese characters
# (and at least one) changes under t2s: 10% lets a traditional question through
# that is mostly characters both scripts share.
TRADITIONAL_SHARE = 0.1


def is_cjk(ch: str) -> bool:
    """True when `ch` is a single CJK ideograph."""
    return bool(_CJK_RE.fullmatch(ch))


def has_han(text: str) -> bool:
    """Whether `text` contains Chinese characters (else it is taken as English)."""
    return bool(_CJK_RE.search(text))


def script_of(text: str) -> str:
    """ "zh-Hans", "zh-Hant" or "en", from the Chinese characters of `text`."""
    han = _CJK_RE.findall(text)
    if not han:
        return "en"
    simplified = to_simplified_chars("".join(han))
    changed = sum(1 for a, b in zip(han, simplified) if a != b)
    return "zh-Hant" if changed >= 1 and changed / len(han) >= TRADITIONAL_SHARE else "zh-Hans"


# --------------------------------------------------------------- traditional -> simplified


@lru_cache(maxsize=1)
def _converter():
    # Created lazily: loading the OpenCC dictionaries costs ~10 ms we skip when unused.
    import opencc

    # The OpenCC wheel (1.1.x-1.4.x) accepts "t2s"; some older builds want "t2s.json".
    try:
        return opencc.OpenCC("t2s")
    except Exception:  # pragma: no cover - depends on the installed opencc build
        return opencc.OpenCC("t2s.json")


def to_simplified(text: str) -> str:
    """Traditional -> simplified with OpenCC `t2s` over the whole string.

    OpenCC converts phrases as well as characters, so the output is not guaranteed
    to have the same length as the input (and can differ from a per-character
    conversion, e.g. phrase-specific choices like 乾隆 vs 乾燥). Use
    `to_simplified_chars` where offsets must stay aligned.
    """
    if not text:
        return text
    return _converter().convert(text)


@lru_cache(maxsize=65536)
def _simplified_char(ch: str) -> str:
    converted = _converter().convert(ch)
    # Keep the original when a character would not map to exactly one character.
    return converted if len(converted) == 1 else ch


def to_simplified_chars(text: str) -> str:
    """Traditional -> simplified one character at a time; same length as `text`.

    Each character gets OpenCC's single-character mapping, so a character whose
    simplification depends on its phrase gets the default choice. That is fine for
    matching (both sides go through the same mapping) but not for display.
    """
    return "".join(_simplified_char(ch) if ord(ch) >= 0x2E80 else ch for ch in text)


# Pieces for the aligned conversion: runs of non-ASCII text between ASCII characters.
# OpenCC phrases never span ASCII, so converting piece by piece loses no phrases.
_NON_ASCII_RUN_RE = re.compile(r"[^\x00-\x7f]+")


def to_simplified_aligned(text: str) -> str:
    """Traditional -> simplified, using OpenCC's phrases, with the length kept.

    Phrase conversion matters: 批覆 becomes 批复 only as a phrase, the character 覆
    alone stays 覆. Nearly every OpenCC t2s rule maps n characters to n characters;
    where a piece of text would change length it is converted character by
    character instead (`to_simplified_chars`), so offsets stay aligned.
    """
    if text.isascii():
        return text

    # Checked run by run rather than on the whole string, so a phrase that shrinks
    # cannot hide behind one that grows elsewhere and shift the offsets in between.
    def piece(m: re.Match) -> str:
        run = m.group()
        converted = to_simplified(run)
        return converted if len(converted) == len(run) else to_simplified_chars(run)

    return _NON_ASCII_RUN_RE.sub(piece, text)
