"""Small pure helpers for text: cleaning, language guessing, gov.kz links, summaries."""

from __future__ import annotations

import re

# The one list of characters removed from every text feedsvc publishes, whether it came from a
# dump or from gov.kz's API: C0 controls except tab/newline/CR, DEL, C1 controls, the two XML
# non-characters, U+FEFF and lone surrogates. XML 1.0 forbids the C0 controls, the surrogates
# and U+FFFE/U+FFFF (a surrogate cannot even be encoded); DEL, the C1 controls and U+FEFF are
# allowed but are noise in a news text (mis-decoded bytes, a byte-order mark pasted mid-text).
_UNWANTED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff\ufeff\ud800-\udfff]")
# The same characters in UTF-8: C0 controls and DEL are single bytes, C1 controls are C2 80-9F,
# U+FEFF/U+FFFE/U+FFFF are EF BB BF/EF BF BE/EF BF BF, and a lone surrogate cannot be encoded.
_C0_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
_C1_UTF8 = re.compile(rb"\xc2[\x80-\x9f]")
_NONCHAR_UTF8 = re.compile(rb"\xef(?:\xbb\xbf|\xbf[\xbe\xbf])")


def has_controls(text: str) -> bool:
    """Whether :func:`strip_controls` would remove anything from ``text``.

    Answers for a whole file at once, in UTF-8: ``bytes.translate`` and two searches with a
    literal first byte take about half the time of one character-class search over the str.
    """
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return True
    return (len(data.translate(None, _C0_BYTES)) != len(data)
            or _C1_UTF8.search(data) is not None or _NONCHAR_UTF8.search(data) is not None)


def strip_controls(text: str) -> tuple[str, int]:
    """Remove characters illegal in XML or invisible noise; return the text and how many."""
    return _UNWANTED.subn("", text)


def xml_safe(text: str) -> str:
    """``text`` without the characters :func:`strip_controls` removes."""
    return _UNWANTED.sub("", text)


# Control bytes a text file has no use for: C0 controls but tab, newline, carriage return and
# form feed, and DEL. A news dump has almost none; random bytes have 11 %, machine formats more.
_CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, *range(0x0E, 0x20), 0x7F])
#: More than one control byte in this many: not text that picked up a few stray characters.
CONTROL_BYTES_PER_TEXT = 10
#: The same for a file that is not valid UTF-8 either (random bytes have one in 8.5).
CONTROL_BYTES_PER_UNDECODABLE = 50
# How much of the start a file signature may need (a tar header ends at byte 262).
_SIGNATURE_BYTES = 8192


def control_bytes(data: bytes) -> int:
    """How many NUL and other control bytes ``data`` holds (one pass, in C)."""
    return len(data) - len(data.translate(None, _CONTROL_BYTES))


def binary_reason(data: bytes) -> str | None:
    """Why ``data`` is a binary file and not text, or None if it may be text.

    A file is binary when it is not text: it starts with the signature of a binary format (PNG,
    JPEG, GIF, PDF, ZIP, gzip, ELF, SQLite... as the ``filetype`` package knows them) and its
    start holds a control byte no text would, or more than one byte in
    ``CONTROL_BYTES_PER_TEXT`` is a NUL or another control byte (a file that is not UTF-8 either
    is judged by :func:`undecodable_reason`). A stray NUL or vertical tab in a text file is
    neither: the text is kept and the character removed (with a warning). Asking for a control
    byte beside a signature keeps signatures that are letters ("BM", "MZ", "ID3" at the start of
    a title) from refusing a text. UTF-16 (half NULs) must be recognised before this is asked.
    """
    import filetype

    head = data[:_SIGNATURE_BYTES]
    kind = filetype.guess(head)
    if kind is not None and (control_bytes(head) or not _utf8_prefix(head)):
        return f"{kind.mime} signature"
    controls = control_bytes(data)
    if controls * CONTROL_BYTES_PER_TEXT > len(data):
        return (f"{controls} of its {len(data)} bytes are NUL or other control bytes; "
                "text has almost none")
    return None


def undecodable_reason(data: bytes) -> str | None:
    """Why ``data``, which is not valid UTF-8, is a binary file: too many control bytes."""
    controls = control_bytes(data)
    if controls * CONTROL_BYTES_PER_UNDECODABLE > len(data):
        return (f"not UTF-8, and {controls} of its {len(data)} bytes are NUL or other control "
                "bytes")
    return None


def _utf8_prefix(head: bytes) -> bool:
    """Whether ``head`` is valid UTF-8, allowing a character cut at its end."""
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.reason == "unexpected end of data" and exc.start >= len(head) - 3
    return True


_LATIN = re.compile("[A-Za-z]")
_CYRILLIC = re.compile("[\u0400-\u04ff]")
_KAZAKH = re.compile("[әіңғүұқөһӘІҢҒҮҰҚӨҺ]")


def guess_language(text: str) -> str:
    """"kk", "ru" or "en", from the letters used in the first few hundred characters.

    Kazakh Cyrillic has nine letters Russian lacks; a text mostly in Cyrillic with a few of them is
    Kazakh. Good enough to keep feeds from mixing languages; not a general language detector.
    """
    sample = text[:600]
    if _CYRILLIC.search(sample) is None:
        return "en"  # the common case, decided by one scan
    latin = len(_LATIN.findall(sample))
    cyrillic = len(_CYRILLIC.findall(sample))
    if cyrillic <= latin:
        return "en"
    kazakh = len(_KAZAKH.findall(sample))
    return "kk" if kazakh >= max(2, cyrillic // 200) else "ru"


def summarise(text: str, limit: int = 280) -> str:
    """The first sentences of a text, cut at a word boundary, for an entry's summary."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0].rstrip(",;:-–—")
    return cut + "…"
