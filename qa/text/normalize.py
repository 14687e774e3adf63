"""Text normalisation: the matching form used by lexical search, highlighting and evaluation.

Three forms, for three jobs:

- `strip_pinyin` removes the pinyin a web converter left after characters
  (`發(fā)展` -> `發展`); it changes the length, so apply it once, at ingest.
- `match_form` folds width, case and traditional/simplified script without changing
  the length, so an offset in the result is an offset in the original
  (highlighting relies on this).
- `eval_form` is the gold-matching rule of `shared/eval/README.md`, verbatim; it
  drops punctuation and spaces, so it is not offset-preserving.

Which characters are Chinese, and the traditional -> simplified mapping, are
`qa.text.script`'s; this module only composes them. Importing it is cheap.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from qa.text.script import CJK_CHAR_CLASS, to_simplified, to_simplified_aligned

__all__ = ["eval_form", "match_form", "strip_pinyin"]

# --------------------------------------------------------------------------- pinyin

# Letters a pinyin annotation may contain: lowercase ASCII, precomposed tone-marked
# vowels, ü, and combining tone marks (in case the text arrived decomposed).
_PINYIN_LETTERS = "a-zāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜü\u0300\u0301\u0304\u030c\u0308"
# "(...)" directly after an ideograph; half- or full-width parentheses.
_ANNOTATION_RE = re.compile(
    f"(?<=[{CJK_CHAR_CLASS}])[(（]([{_PINYIN_LETTERS}]{{1,14}}(?:[ '’][{_PINYIN_LETTERS}]{{1,7}})?)[)）]"
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
    bare = unicodedata.normalize("NFC", "".join(ch for ch in decomposed if ch not in _TONE_MARKS))
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
    return _ANNOTATION_RE.sub(lambda m: "" if _is_pinyin(m.group(1)) else m.group(0), text)


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
