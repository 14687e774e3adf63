"""Bytes to text: which encoding a text file (or an HTML page) was saved in.

A byte-order mark decides first (UTF-8, UTF-16, UTF-32); then known non-text
signatures and NUL bytes are refused by name; then strict UTF-8; then the legacy
Chinese encodings, GB18030 (GBK) and Big5, each decoded strictly, the reading that is
plausible Chinese winning (`rare_share`); charset-normalizer only breaks exact ties.
A text no encoding reads plausibly, or UTF-8 that is Chinese once read as Latin-1
and saved again, is refused rather than indexed as mojibake.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qa.errors import CorpusError
from qa.text.script import is_cjk, to_simplified_chars


@dataclass(frozen=True)
class Decoded:
    """A text file's characters and the encoding they were read with."""

    text: str
    encoding: str


# Byte-order marks, longest first: the UTF-32 LE mark begins with the UTF-16 LE one.
_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32-le", "UTF-32"),
    (b"\x00\x00\xfe\xff", "utf-32-be", "UTF-32"),
    (b"\xef\xbb\xbf", "utf-8", "UTF-8"),
    (b"\xff\xfe", "utf-16-le", "UTF-16"),
    (b"\xfe\xff", "utf-16-be", "UTF-16"),
)
# Files that are not text, by their first bytes: named in the message so the fix is obvious.
_SIGNATURES = (
    (b"%PDF-", "a PDF document; give it a .pdf suffix"),
    (b"PK\x03\x04", "a ZIP archive (a .docx is one); give a Word file a .docx suffix, or remove it"),
    (b"\xd0\xcf\x11\xe0", "an old Word/Office document (.doc); save it as .docx or .txt"),
    (b"{\\rtf", "an RTF document; save it as .docx or .txt"),
    (b"\x89PNG", "a PNG image; remove it from the corpus folder"),
    (b"\xff\xd8\xff", "a JPEG image; remove it from the corpus folder"),
    (b"GIF8", "a GIF image; remove it from the corpus folder"),
)
# Legacy Chinese encodings tried when a file is not UTF-8, in order of preference on
# a tie. gb18030 is a superset of GBK and GB2312; cp950 is Big5 as Windows writes it,
# big5hkscs adds the Hong Kong characters.
CHINESE_ENCODINGS = ("gb18030", "cp950", "big5hkscs")
# A reading where more than this share of the non-ASCII characters are not common
# Chinese characters or punctuation is mojibake. Measured on the 594 articles of
# shared/bench (cmrc2018 simplified, drcd traditional), corpus/ and shared/seeds,
# encoded as GBK and (where they fit) Big5 and read both ways: the right reading
# scores at most 0.074 for a whole article and 0.19 for a headline plus one
# sentence; the wrong one at least 0.545 and 0.451. Between the two readings of the
# same bytes the right one scored lower in all 2,584 cases, down to one sentence.
MAX_RARE_SHARE = 0.4
# Plausibility is judged on the start of the text: mojibake is spread evenly.
_SAMPLE_CHARS = 20_000
_COMMON_PUNCTUATION = frozenset("，。、：；！？“”‘’《》〈〉（）「」『』【】〔〕—…·～－％　")


def decode_text(data: bytes, path: Path, declared: str | None = None) -> Decoded:
    """Decode the bytes of a text article.

    A byte-order mark decides first; then strict UTF-8; then each legacy Chinese
    encoding that decodes the bytes without error, judged by how plausible its
    reading is as Chinese. GBK and Big5 both decode most Chinese byte strings
    without error, but the wrong one reads as rare characters, kana and symbols.

    Args:
        data: the file's bytes.
        path: for error messages.
        declared: an encoding the file declares (an HTML meta charset), tried first.

    Raises:
        CorpusError: binary data, or no encoding gives a plausible reading.
    """
    for bom, encoding, name in _BOMS:
        if data.startswith(bom):
            try:
                return _refuse_mojibake(Decoded(data[len(bom) :].decode(encoding), f"{name} with BOM"), path)
            except UnicodeDecodeError as error:
                raise CorpusError(
                    f"{path}: starts with a {name} byte-order mark but is not valid {name} "
                    f"(byte {error.start + len(bom)}); save it again as UTF-8"
                ) from error
    _refuse_binary(data, path)
    if declared:
        text = _declared_reading(data, declared)
        if text is not None:
            return _refuse_mojibake(Decoded(text, declared), path)
    try:
        return _refuse_mojibake(Decoded(data.decode("utf-8"), "utf-8"), path)
    except UnicodeDecodeError as error:
        if error.reason == "unexpected end of data" and len(data) - error.start < 4:
            # UTF-8 cut inside its last character (a copy or download stopped short): the
            # text is UTF-8 whole but for that character, which a GBK reading would not be.
            return _refuse_mojibake(Decoded(data[: error.start].decode("utf-8"), "utf-8 (cut short)"), path)
    return _best_chinese_reading(data, path)


def _refuse_binary(data: bytes, path: Path) -> None:
    for signature, what in _SIGNATURES:
        if data.startswith(signature):
            raise CorpusError(f"{path}: is {what}")
    # NUL never occurs in UTF-8 or the Chinese legacy encodings (git uses the same test).
    if b"\x00" in data[:8192]:
        raise CorpusError(
            f"{path}: looks like a binary file, not text (it holds NUL bytes); remove it, "
            f"or if it is UTF-16 text without a byte-order mark, save it as UTF-8"
        )


def _declared_reading(data: bytes, declared: str) -> str | None:
    """The text under a declared encoding, or None when the declaration is wrong."""
    import codecs

    try:
        codec = codecs.lookup(declared).name
        text = data.decode(codec)
    except (LookupError, UnicodeDecodeError):
        return None
    # Pages labelled gb2312 or big5 are often the other one; only for those is the
    # reading checked, so a page truly in Latin-1 or Shift-JIS keeps its declaration.
    chinese = codec in ("gb2312", "gbk", "gb18030", "big5", "cp950", "big5hkscs")
    return None if chinese and rare_share(text) > MAX_RARE_SHARE else text


def _best_chinese_reading(data: bytes, path: Path) -> Decoded:
    readings: dict[str, str] = {}
    for encoding in CHINESE_ENCODINGS:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if text not in readings.values():
            readings[encoding] = text
    if not readings:
        raise CorpusError(
            f"{path}: is not text in UTF-8, GB18030/GBK or Big5 (it does not decode in any "
            f"of them); save it as UTF-8, or remove it if it is not an article"
        )
    shares = {encoding: rare_share(text) for encoding, text in readings.items()}
    best = min(shares.values())
    tied = [encoding for encoding, share in shares.items() if share == best]
    encoding = tied[0] if len(tied) == 1 else _detector_choice(data, tied)
    if best > MAX_RARE_SHARE:
        sample = "".join(readings[encoding].split())[:12]
        raise CorpusError(
            f"{path}: is not UTF-8, and read as {encoding} (the likeliest Chinese encoding) "
            f"it is mostly rare characters and symbols ({sample!r}...), so it is mojibake, "
            f"not Chinese text; save it as UTF-8"
        )
    return Decoded(readings[encoding], encoding)


def _detector_choice(data: bytes, tied: list[str]) -> str:
    """charset-normalizer's pick among readings that are equally plausible.

    Ties happen only for a handful of characters (a one-word file), where its mess
    and coherence measures are as good a guess as any; it has no opinion below
    a few bytes, and the first encoding (gb18030) is kept.
    """
    from charset_normalizer import from_bytes

    best = from_bytes(data, cp_isolation=tied).best()
    return best.encoding if best is not None and best.encoding in tied else tied[0]


def rare_share(text: str) -> float:
    """Share of the non-ASCII characters of `text` that are not common Chinese.

    Common means a frequent CJK punctuation mark, a fullwidth ASCII form, or a
    character whose simplified form is in GB2312 level 1 (the 3,755 most frequent
    characters). A right reading of Chinese news scores near 0; reading GBK bytes
    as Big5 (or the reverse) gives rare characters, kana, bopomofo and private-use
    characters, near 1.
    """
    chars = [char for char in text[:_SAMPLE_CHARS] if ord(char) > 0x7F and not char.isspace()]
    if not chars:
        return 0.0
    rare = sum(1 for char in chars if not _is_common_chinese(char))
    return rare / len(chars)


def _is_common_chinese(char: str) -> bool:
    if char in _COMMON_PUNCTUATION or 0xFF01 <= ord(char) <= 0xFF5E:
        return True
    if not is_cjk(char):
        return False
    return _in_gb2312_level1(char) or _in_gb2312_level1(to_simplified_chars(char))


def _in_gb2312_level1(char: str) -> bool:
    # Level 1 occupies rows 0xB0-0xD7 of GB2312.
    try:
        encoded = char.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return len(encoded) == 2 and 0xB0 <= encoded[0] <= 0xD7


def _cp1252_bytes() -> dict[str, int]:
    """The byte each character at 0x80-0x9F stood for: its C1 control or its cp1252 letter."""
    table = {chr(code): code for code in range(0x80, 0xA0)}
    for code in range(0x80, 0xA0):
        try:
            table[bytes([code]).decode("cp1252")] = code
        except UnicodeDecodeError:
            pass  # five bytes cp1252 leaves undefined; Latin-1 readers keep them as C1 controls
    return table


_CP1252_BYTES = _cp1252_bytes()


def _refuse_mojibake(decoded: Decoded, path: Path) -> Decoded:
    """Refuse Chinese that was once read as Latin-1/cp1252 and saved again ("ä¸­æ–‡").

    Such text is valid UTF-8 made only of Latin-1 letters; turned back into the bytes
    those letters stood for, it reads as Chinese again (UTF-8 with a few bytes lost
    where cp1252 had no letter, or GBK/Big5 whole). A real Latin-1 text (German,
    French) does not turn back into Chinese, so it is kept.
    """
    text = decoded.text[:_SAMPLE_CHARS]
    if text.isascii() or any(ord(char) > 0xFF and char not in _CP1252_BYTES for char in text):
        return decoded
    original = bytes(_CP1252_BYTES.get(char, ord(char)) for char in text)
    readings = [original.decode("utf-8", errors="replace")]
    for encoding in CHINESE_ENCODINGS:
        try:
            readings.append(original.decode(encoding))
        except UnicodeDecodeError:
            continue
    for chinese in readings:
        han = sum(1 for char in chinese if is_cjk(char))
        lost = chinese.count("\ufffd")
        chinese = chinese.replace("\ufffd", "")
        if han >= 4 and han > 3 * lost and rare_share(chinese) <= 0.1:
            raise CorpusError(
                f"{path}: is mojibake: Chinese text that was read as Latin-1 and saved again "
                f"({text.strip()[:12]!r} was {chinese.strip()[:6]!r}); save it again from "
                f"the original file as UTF-8"
            )
    return decoded
