"""Text normalisation: the matching form used by lexical search, highlighting and evaluation.

Three forms, for three jobs:

- `strip_pinyin` removes the pinyin a web converter left after characters
  (`發(fā)展` -> `發展`); it changes the length, so apply it once, at ingest.
- `match_form` folds width, case and traditional/simplified script without changing
  the length, so an offset in the result is an offset in the original
  (highlighting relies on this).
- `eval_form` is the gold-matching rule of `shared/eval/README.md`, verbatim; it
  drops punctuation and spaces, so it is not offset-preserving.

Only the standard library and `opencc` are used, so importing this module is cheap.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

__all__ = [
    "CJK_CHAR_CLASS",
    "eval_form",
    "is_cjk",
    "match_form",
    "strip_pinyin",
    "to_simplified",
    "to_simplified_aligned",
    "to_simplified_chars",
]

# CJK ideographs: Extension A, the URO, compatibility ideographs, and the
# supplementary-plane extensions (B..H). Used inside regex character classes.
CJK_CHAR_CLASS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_CJK_RE = re.compile(f"[{CJK_CHAR_CLASS}]")


def is_cjk(ch: str) -> bool:
    """True when `ch` is a single CJK ideograph."""
    return bool(_CJK_RE.fullmatch(ch))


# --------------------------------------------------------------------------- pinyin

# Letters a pinyin annotation may contain: lowercase ASCII, precomposed tone-marked
# vowels, ü, and combining tone marks (in case the text arrived decomposed).
_PINYIN_LETTERS = "a-zāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜü\u0300\u0301\u0304\u030c\u0308"
# "(...)" directly after an ideograph; half- or full-width parentheses.
_ANNOTATION_RE = re.compile(
    f"(?<=[{CJK_CHAR_CLASS}])[(（]"
    f"([{_PINYIN_LETTERS}]{{1,14}}(?:[ '’][{_PINYIN_LETTERS}]{{1,7}})?)"
    "[)）]"
)
# One toneless pinyin syllable: optional initial + a final from the standard table.
# Longest alternatives first so the regex engine does not stop at a prefix.
_SYLLABLE = (
    r"(?:zh|ch|sh|[bpmfdtnlgkhjqxrzcsyw])?"
    r"(?:iang|iong|uang|ueng|ang|eng|ing|ong|ian|iao|uai|uan|üan|van"
    r"|ai|ei|ao|ou|an|en|er|ia|ie|iu|in|ua|uo|ui|un|üe|ve|ue|ün|vn|a|o|e|i|u|ü|v)"
)
_ONE_SYLLABLE_RE = re.compile(_SYLLABLE)
_ONE_OR_TWO_SYLLABLES_RE = re.compile(f"{_SYLLABLE}(?:[ '’]?{_SYLLABLE})?")
_TONE_MARKS = {"\u0300", "\u0301", "\u0304", "\u030c"}


def _is_pinyin(annotation: str) -> bool:
    """Whether a parenthesised lowercase string is plausibly one or two pinyin syllables.

    With tone marks (what web converters emit) one or two syllables pass. Without
    them only a single syllable of two letters or more does: a lone "(a)" is more
    likely a list marker, and two toneless "syllables" are more likely an English
    word such as "(gene)".
    """
    decomposed = unicodedata.normalize("NFD", annotation)
    has_tone = any(ch in _TONE_MARKS for ch in decomposed)
    # Drop tone marks but keep ü (u + U+0308) as one letter.
    bare = unicodedata.normalize(
        "NFC", "".join(ch for ch in decomposed if ch not in _TONE_MARKS)
    )
    if has_tone:
        return bool(_ONE_OR_TWO_SYLLABLES_RE.fullmatch(bare))
    return len(bare) >= 2 and bool(_ONE_SYLLABLE_RE.fullmatch(bare))


def strip_pinyin(text: str) -> str:
    """Remove pinyin annotations left right after a CJK character.

    `發(fā)展` -> `發展`, `創(chuàng)新` -> `創新`. Parentheses holding anything that is
    not lowercase pinyin stay: `（RCEP）`, `(GPU)`, `（2020-2035年）`, `(2024)`.
    The result is shorter than the input when something was removed.
    """
    if "(" not in text and "（" not in text:
        return text
    return _ANNOTATION_RE.sub(
        lambda m: "" if _is_pinyin(m.group(1)) else m.group(0), text
    )


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


# ----------------------------------------------------------------------- match form


@lru_cache(maxsize=65536)
def _fold_char(ch: str) -> str:
    """NFKC and lowercase for one character, kept only where each maps 1 -> 1."""
    folded = unicodedata.normalize("NFKC", ch)
    if len(folded) != 1:
        folded = ch  # e.g. "㎡" -> "m2" would shift offsets
    lowered = folded.lower()
    return lowered if len(lowered) == 1 else folded  # "İ".lower() is two characters


def match_form(text: str) -> str:
    """The offset-preserving matching form of `text`.

    Per character: NFKC where it maps one character to one (full-width digits,
    letters and punctuation -> ASCII) and lowercase; then traditional -> simplified
    with `to_simplified_aligned` (OpenCC phrases where they keep the length, single
    characters otherwise). The result always has exactly `len(text)` characters, so
    `match_form(text)[i:j]` corresponds to `text[i:j]`. Pinyin annotations are not
    removed here (that would shift offsets); use `strip_pinyin` on the source first.
    """
    if text.isascii():
        return text.lower()  # fast path; ASCII lowercasing is 1 -> 1
    folded = "".join(map(_fold_char, text))
    return to_simplified_aligned(folded)


# ------------------------------------------------------------------------ eval form


def _keep_for_eval(ch: str) -> bool:
    if ch in ".%":
        return True
    return unicodedata.category(ch)[0] not in "ZCP"


def eval_form(text: str) -> str:
    """Normalise text for gold matching, exactly as `shared/eval/README.md` specifies.

    1. Unicode NFKC; 2. remove pinyin annotations; 3. OpenCC t2s (whole string);
    4. remove every character of category Z*, C* or P* except `.` and `%`.
    """
    text = unicodedata.normalize("NFKC", text)
    text = strip_pinyin(text)
    text = to_simplified(text)
    return "".join(ch for ch in text if _keep_for_eval(ch))
