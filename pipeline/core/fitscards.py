"""FITS header cards read and written in plain Python, for nodes that never touch pixels.

Archiving a product needs its primary and first-extension keywords, and packaging a trailer writes a
two-HDU ASCII table; importing ``astropy.io.fits`` (with numpy) for either costs ~0.12 s of a node that
otherwise finishes in a few tenths. :func:`read_cards` understands the cards HST files are made of
(``KEY     = value / comment`` with a string, logical, integer or real value; long strings on
CONTINUE cards; commentary cards) and gives up, returning None, on anything else (HIERARCH, an
undefined or complex value, a record-valued keyword, a malformed card, a primary without
``SIMPLE = T`` and ``EXTEND = T``, random groups, a tile-compressed image, data past the end of
the file): :func:`header_values` then asks astropy (imported only then), so an unusual file gets
exactly the answer it always got.
Values are what astropy's ``Card.value`` gives, trailing blanks of a string stripped
(``tests/test_fitscards.py`` holds the two equal on real HST files).
"""

from __future__ import annotations

import gzip
import os
import re
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

#: FITS logical record; headers and data areas are padded to a multiple of it.
RECORD = 2880
CARD = 80
#: Cards that carry text, not a value.
COMMENTARY = frozenset({"", "COMMENT", "HISTORY"})

_KEYWORD = re.compile(r"[A-Z0-9_-]{1,8}\Z")
_INT = re.compile(r"[+-]?\d+\Z")
_REAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[EeDd][+-]?\d+)?\Z")
#: A string astropy reads as a record-valued keyword (``DP1 = 'EXTVER: 1'`` is ``DP1.EXTVER = 1.0``):
#: left to astropy (a looser pattern than astropy's, so that none slips through).
_RECORD_VALUED = re.compile(r"\s*[a-zA-Z_]\w*(\.\w+)*\s*:\s*[+-]?[\d.]")
_BITPIX = {8: 1, 16: 2, 32: 4, 64: 8, -32: 4, -64: 8}

Value = str | bool | int | float


class _Unusual(Exception):
    """A card or layout outside what :func:`read_cards` reads itself."""


def _string(field: str) -> tuple[str, str]:
    """A quoted string at the start of ``field`` (``''`` is a quote): (value, what follows)."""
    i, out = 1, []
    while True:
        j = field.find("'", i)
        if j < 0:
            raise _Unusual("unterminated string")
        out.append(field[i:j])
        if field[j + 1:j + 2] == "'":
            if field[j + 2:].lstrip(" ").startswith("/"):   # astropy ends the string at the pair's second quote
                raise _Unusual("a doubled quote before a slash")
            out.append("'")
            i = j + 2
            continue
        return "".join(out).rstrip(), field[j + 1:]


def parse_value(field: str) -> Value:
    """The value of a card's columns 11-80 (astropy's ``Card.value``); :class:`_Unusual` otherwise."""
    text = field.lstrip()
    if text.startswith("'"):
        value, rest = _string(text)
        if rest.strip() and not rest.lstrip().startswith("/"):
            raise _Unusual("text after a string")
        if _RECORD_VALUED.match(value):
            raise _Unusual("record-valued keyword")
        return value
    token = text.split("/", 1)[0].strip()
    if token in ("T", "F"):
        return token == "T"
    if _INT.match(token):
        return int(token)
    if _REAL.match(token):
        return float(token.replace("D", "E").replace("d", "e"))
    raise _Unusual(f"value {token!r}")


def _long_string(card: str, continued: list[str]) -> str:
    """A string value continued on CONTINUE cards, as astropy joins it: each part's string (blanks at
    its end dropped, then one trailing ``&``), the parts end to end."""
    parts = []
    if any(c[8:10] != "  " for c in continued):
        raise _Unusual("CONTINUE without blanks in columns 9-10")
    for field in (card[10:], *(c[10:] for c in continued)):
        text = field.lstrip()
        if not text.startswith("'"):
            raise _Unusual("CONTINUE without a string")
        value, rest = _string(text)
        if rest.strip() and not rest.lstrip().startswith("/"):
            raise _Unusual("text after a string")
        parts.append(value[:-1] if value.endswith("&") else value)
    joined = "".join(parts)
    if "'" in joined or _RECORD_VALUED.match(joined):   # astropy quotes the joined string again and reads it back
        raise _Unusual("quote or record value in a long string")
    return joined.rstrip()


def parse_card(card: str, continued: list[str] | None = None) -> tuple[str, Value | None]:
    """(keyword, value) of one 80-character card and the CONTINUE cards after it; commentary cards
    give (keyword, None)."""
    keyword = card[:8].rstrip()
    if keyword in COMMENTARY and not continued:
        return keyword, None
    if not _KEYWORD.match(keyword) or keyword in ("HIERARCH", "CONTINUE", "END") or card[8:10] != "= ":
        raise _Unusual(f"card {card[:10]!r}")
    return keyword, (_long_string(card, continued) if continued else parse_value(card[10:]))


def _header(fh: BinaryIO) -> list[tuple[str, Value | None]] | None:
    """The cards of the header starting at ``fh``'s position, END excluded; None at end of file.
    CONTINUE cards belong to the card before them, as astropy reads a header."""
    images: list[str] = []
    while True:
        block = fh.read(RECORD)
        if not block and not images:
            return None
        if len(block) != RECORD:
            raise _Unusual("short header record")
        try:
            text = block.decode("ascii")
        except UnicodeDecodeError:
            raise _Unusual("non-ASCII header") from None
        if not text.isprintable():
            raise _Unusual("control characters in a header")
        for start in range(0, RECORD, CARD):
            card = text[start:start + CARD]
            if card.startswith("END") and not card[3:].strip():
                return _parse_all(images)
            images.append(card)


def _parse_all(images: list[str]) -> list[tuple[str, Value | None]]:
    cards: list[tuple[str, Value | None]] = []
    i = 0
    while i < len(images):
        j = i + 1
        while j < len(images) and images[j].startswith("CONTINUE"):
            j += 1
        cards.append(parse_card(images[i], images[i + 1:j]))
        i = j
    return cards


def _data_size(h: dict[str, Value]) -> int:
    """Bytes of the data area that follows a header (its :func:`values`), padding included."""
    if h.get("GROUPS") is True:
        raise _Unusual("random groups")
    bitpix, naxis = h.get("BITPIX"), h.get("NAXIS")
    if bitpix not in _BITPIX or not isinstance(naxis, int) or isinstance(naxis, bool) or not 0 <= naxis <= 999:
        raise _Unusual("BITPIX or NAXIS")
    if naxis == 0:
        return 0
    pixels = 1
    for n in range(1, naxis + 1):
        size = h.get(f"NAXIS{n}")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise _Unusual(f"NAXIS{n}")
        pixels *= size
    pcount, gcount = h.get("PCOUNT", 0), h.get("GCOUNT", 1)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (pcount, gcount)):
        raise _Unusual("PCOUNT or GCOUNT")
    size = _BITPIX[bitpix] * gcount * (pcount + pixels)  # type: ignore[index,operator]
    return size + (-size % RECORD)


def _open(path: Path) -> BinaryIO:
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")  # type: ignore[return-value]


def read_cards(path: Path | str, hdus: int | None = 2) -> list[list[tuple[str, Value | None]]] | None:
    """The (keyword, value) cards of the first ``hdus`` headers of a FITS file (all with None; fewer
    when the file has fewer), commentary cards with None; None when the file holds anything this
    module does not read itself (ask astropy then): a primary without ``SIMPLE = T`` and ``EXTEND = T``
    among them. A missing or unreadable file raises ``OSError``."""
    path = Path(path)
    limit = hdus if hdus is not None else float("inf")
    with _open(path) as fh:
        total = None if isinstance(fh, gzip.GzipFile) else os.fstat(fh.fileno()).st_size
        try:
            out: list[list[tuple[str, Value | None]]] = []
            while len(out) < limit:
                cards = _header(fh)
                if cards is None:
                    break
                first = cards[0][0] if cards else ""
                if first != ("SIMPLE" if not out else "XTENSION"):
                    raise _Unusual(f"header {len(out)} starts with {first!r}")
                keywords = values(cards)
                if not out and (cards[0][1] is not True or keywords.get("EXTEND") is not True):
                    raise _Unusual("SIMPLE or EXTEND not T (astropy reads such a primary its own way)")
                if keywords.get("ZIMAGE") is True:
                    raise _Unusual("a tile-compressed image (astropy shows its image header)")
                out.append(cards)
                if len(out) < limit:
                    size = _data_size(keywords)
                    if total is not None and fh.tell() + size > total:
                        raise _Unusual("data beyond the end of the file")   # astropy says what it makes of it
                    fh.seek(size, 1)
            return out or None
        except (_Unusual, EOFError, ValueError, gzip.BadGzipFile, zlib.error):   # astropy then says what it makes of it
            return None


def values(cards: Iterable[tuple[str, Value | None]]) -> dict[str, Value]:
    """A header's keywords and values, commentary dropped, the first of a repeated keyword kept (as
    astropy's ``Header[keyword]`` answers)."""
    out: dict[str, Value] = {}
    for keyword, value in cards:
        if keyword not in COMMENTARY:
            out.setdefault(keyword, value)  # type: ignore[arg-type]
    return out


def astropy_cards(header: Any) -> Iterator[tuple[str, Value | None]]:
    """The (keyword, value) pairs of an astropy ``Header``, as :func:`read_cards` gives a header's."""
    return ((card.keyword, card.value) for card in header.cards)


def header_values(path: Path | str, hdus: int | None = 2) -> list[dict[str, Value]]:
    """The first ``hdus`` headers of a FITS file (None: all) as :func:`values` mappings: read here when
    :func:`read_cards` can, else by astropy (imported only then), which gives the same mappings.
    A missing, unreadable or damaged file (a broken gzip stream too) raises ``OSError``; a file astropy
    cannot make sense of raises what astropy raises (``ValueError``...)."""
    cards = read_cards(path, hdus)
    if cards is not None:
        return [values(c) for c in cards]
    from astropy.io import fits

    try:
        with fits.open(path, memmap=True, do_not_scale_image_data=True) as hdul:
            return [values(astropy_cards(h.header)) for h in (hdul if hdus is None else hdul[:hdus])]
    except zlib.error as exc:
        raise OSError(f"damaged compressed data ({exc})") from exc


# -- writing ---------------------------------------------------------------------------------------
def format_card(keyword: str, value: str | bool | int, comment: str = "") -> str:
    """One fixed-format card as astropy writes it: integers and logicals right-justified to column 30,
    strings quoted from column 11 (at least 8 characters inside the quotes), `` / comment`` after.
    Reals are not written here (their digits are astropy's own choice), nor a card that does not fit
    in 80 characters (astropy would shorten its comment or continue its string): both are errors."""
    if isinstance(value, float):
        raise TypeError(f"{keyword}: real values are not formatted here")
    if value == "":
        text = f"{keyword:<8}= ''"
    elif isinstance(value, str):
        quoted = "'" + value.replace("'", "''").ljust(8) + "'"
        text = f"{keyword:<8}= {quoted:<20}"
    else:
        shown = ("T" if value else "F") if isinstance(value, bool) else str(value)
        text = f"{keyword:<8}= {shown:>20}"
    if comment:
        text += f" / {comment}"
    if len(text) > CARD or not _KEYWORD.match(keyword):
        raise ValueError(f"{keyword}: does not fit one FITS card: {text!r}")
    return text.ljust(CARD)


def header_bytes(cards: Iterable[tuple[str, str | bool | int, str]]) -> bytes:
    """A header (``END`` added) padded with blanks to whole records."""
    text = "".join(format_card(*card) for card in cards) + "END".ljust(CARD)
    return text.ljust(-(-len(text) // RECORD) * RECORD).encode("ascii")


def ascii_table(rows: list[str], width: int, *, column: str, extname: str) -> Iterator[bytes]:
    """An ASCII table extension (``XTENSION = 'TABLE'``) of one ``A<width>`` column: header, then the
    rows blank-padded to ``width`` (longer ones are an error), the data padded with blanks."""
    yield header_bytes([
        ("XTENSION", "TABLE", "ASCII table extension"), ("BITPIX", 8, "array data type"),
        ("NAXIS", 2, "number of array dimensions"), ("NAXIS1", width, "length of dimension 1"),
        ("NAXIS2", len(rows), "length of dimension 2"), ("PCOUNT", 0, "number of group parameters"),
        ("GCOUNT", 1, "number of groups"), ("TFIELDS", 1, "number of table fields"),
        ("TTYPE1", column, ""), ("TFORM1", f"A{width}", ""), ("TBCOL1", 1, ""),
        ("EXTNAME", extname, "extension name"),
    ])
    rows = [r.rstrip("\0") for r in rows]   # as astropy's column (numpy bytes) drops a row's trailing NULs
    if any(len(r) > width for r in rows):
        raise ValueError(f"a row is longer than {width} characters")
    data = "".join(r.ljust(width) for r in rows).encode("ascii")
    yield data + b" " * (-len(data) % RECORD)
