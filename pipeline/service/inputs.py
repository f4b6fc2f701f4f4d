"""Checks on what clients send: query strings that are UTF-8, dataset and file names that are names.

Every path and query value is checked against a strict pattern before anything is looked up, so
traversal (``../``), SQL metacharacters and control bytes end as a 400 naming the parameter, never
as a lookup. Files are only ever served from the catalogue's blob paths, never from a client path.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from starlette.requests import Request

from pipeline.core.names import DatasetName, parse_dataset
from pipeline.service.errors import ApiError

_FILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,254}$")
#: Instrument, target, collection, program values: no quotes, semicolons or other SQL/shell metacharacters.
_PLAIN_RE = re.compile(r"^[\w .+*/:()\[\],-]{1,64}$")
MAX_VALUE = 2000


def query_params(request: Request) -> list[tuple[str, str]]:
    """The query string's (name, value) pairs, refusing bytes that are not UTF-8 and oversized values."""
    return form_pairs(request.scope.get("query_string", b""))


def form_pairs(raw: bytes) -> list[tuple[str, str]]:
    """(name, value) pairs of ``application/x-www-form-urlencoded`` bytes (a query string or a POST body)."""
    pairs = []
    for part in raw.split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        try:
            key = unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8")
            text = unquote_to_bytes(value.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, f"query parameter {name[:40]!r}: not valid UTF-8") from None
        if len(text) > MAX_VALUE:
            raise ApiError(400, f"query parameter {key[:40]}: value longer than {MAX_VALUE} characters")
        if any(ord(c) < 32 for c in key + text):
            raise ApiError(400, f"query parameter {key[:40]!r}: control characters are not allowed")
        pairs.append((key, text))
    return pairs


def dataset_param(text: str) -> DatasetName:
    try:
        return parse_dataset(text)
    except ValueError:
        raise ApiError(400, f"{text[:40]!r} is not a dataset name (9 letters and digits, e.g. ib4606c5q)") from None


def file_param(text: str) -> str:
    if not _FILE_NAME_RE.fullmatch(text) or ".." in text:
        raise ApiError(400, f"{text[:60]!r} is not an archived file name")
    return text


def plain_param(name: str, text: str, error: type[ApiError] = ApiError) -> str:
    """A name-like value (instrument, target, program, ...), refused when it holds anything else."""
    if not _PLAIN_RE.fullmatch(text):
        raise error(400, f"{name}: {text[:40]!r} is not a plain name (letters, digits, spaces, .+-/*:)")
    return text


def int_param(name: str, text: str | None, *, low: int = 0, high: int = 10**9) -> int | None:
    if text is None or text == "":
        return None
    if not re.fullmatch(r"\d{1,10}", text) or not low <= int(text) <= high:
        raise ApiError(400, f"{name}={text[:40]!r}: expected a whole number from {low} to {high}")
    return int(text)


def only(pairs: list[tuple[str, str]], allowed: set[str]) -> dict[str, str]:
    """Single-valued parameters from ``allowed``; unknown or repeated names are refused."""
    out: dict[str, str] = {}
    for key, value in pairs:
        if key not in allowed:
            raise ApiError(400, f"unknown query parameter {key[:40]!r}; known: {', '.join(sorted(allowed))}")
        if key in out:
            raise ApiError(400, f"query parameter {key} given twice")
        out[key] = value
    return out
