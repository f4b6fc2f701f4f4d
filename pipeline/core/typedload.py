"""Load a TOML tree into typed dataclasses, checking every value the way the site configuration always has.

The site configuration is read by every stage executable before its OSF claim, and a DAN by
``owl-dan-receipt`` as its first work, where pydantic's import and model building alone would take
a third of the start-up budget. This covers what those use (str, int, float, bool, Path, datetime,
Literal, list, dict[str, ...], nested dataclasses, ``X | None``) with pydantic's lax conversions
(``"4"`` -> 4, ``"yes"`` -> True: environment overrides are strings) and its error wording, so
operators see the same one-line messages as before.
Constraints come from field metadata (``ge``, ``gt``, ``le``, ``min_length``, ``max_length``,
``pattern``); a ``check`` in the metadata is a function that raises ValueError for a bad value; a
dataclass's ``_after_load`` method checks the whole loaded instance (raising ValueError), once all
its fields are valid.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import types
import typing
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

_TRUE = {"1", "on", "t", "true", "y", "yes"}
_FALSE = {"0", "off", "f", "false", "n", "no"}
_BOUNDS = (("ge", "greater than or equal to", lambda v, b: v >= b), ("gt", "greater than", lambda v, b: v > b),
           ("le", "less than or equal to", lambda v, b: v <= b))


@dataclasses.dataclass(frozen=True)
class Problem:
    """One bad value: where (dotted path), what is wrong, and the value given."""

    loc: tuple[str | int, ...]
    msg: str
    given: Any

    def line(self) -> str:
        key = ".".join(str(p) for p in self.loc) or "(top level)"
        return f"{key}: {self.msg}" + ("" if isinstance(self.given, dict) else f" (got {self.given!r})")


class Invalid(ValueError):
    """Every problem found in a tree, in field order."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems[0].line())
        self.problems = problems


def bounded(default: Any = dataclasses.MISSING, *, factory: Any = dataclasses.MISSING, **meta: Any) -> Any:
    """A field with a default (or ``factory``) and bounds/check in its metadata."""
    return dataclasses.field(default=default, default_factory=factory, metadata=meta)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def load(cls: type, tree: Any) -> Any:
    """An instance of dataclass ``cls`` from ``tree``; raises :class:`Invalid` listing every problem."""
    problems: list[Problem] = []
    value = _section(cls, tree, (), problems)
    if problems:
        raise Invalid(problems)
    return value


def _section(cls: type, tree: Any, loc: tuple, problems: list[Problem]) -> Any:
    if isinstance(tree, cls):
        return tree
    if not isinstance(tree, dict):
        problems.append(Problem(loc, f"Input should be a valid dictionary or instance of {cls.__name__}", tree))
        return None
    hints = _hints(cls)
    values = {}
    before = len(problems)
    for f in dataclasses.fields(cls):
        if f.init and f.name in tree:
            values[f.name] = _check(_value(hints[f.name], tree[f.name], (*loc, f.name), problems), f,
                                    tree[f.name], (*loc, f.name), problems)
        elif f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            problems.append(Problem((*loc, f.name), "Field required", tree))
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    problems.extend(Problem((*loc, k), "Extra inputs are not permitted", v) for k, v in tree.items() if k not in names)
    if len(problems) > before:
        return None
    value = cls(**values)
    if hasattr(value, "_after_load"):
        try:
            value._after_load()
        except ValueError as exc:
            problems.append(Problem(loc, f"Value error, {exc}", tree))
    return value


def _check(value: Any, f: dataclasses.Field, given: Any, loc: tuple, problems: list[Problem]) -> Any:
    if value is None:
        return value
    for key, words, ok in _BOUNDS:
        if key in f.metadata and not ok(value, f.metadata[key]):
            problems.append(Problem(loc, f"Input should be {words} {f.metadata[key]}", given))
            return value
    if (msg := _length(value, f.metadata)) is not None:
        problems.append(Problem(loc, msg, given))
        return value
    if "pattern" in f.metadata and not re.search(f.metadata["pattern"], value):
        problems.append(Problem(loc, f"String should match pattern '{f.metadata['pattern']}'", given))
        return value
    if "check" in f.metadata:
        try:
            f.metadata["check"](value)
        except ValueError as exc:
            problems.append(Problem(loc, f"Value error, {exc}", given))
    return value


def _length(value: Any, meta: Any) -> str | None:
    """pydantic's message for a string or list outside ``min_length``/``max_length``, else None."""
    if "min_length" not in meta and "max_length" not in meta:
        return None
    if isinstance(value, str):
        what, unit, after = "String", "character", ""
    else:
        what, unit, after = "List", "item", f" after validation, not {len(value)}"
    for key, side in (("min_length", "at least"), ("max_length", "at most")):
        limit = meta.get(key)
        if limit is not None and (len(value) < limit if key == "min_length" else len(value) > limit):
            return f"{what} should have {side} {limit} {unit}{'' if limit == 1 else 's'}{after}"
    return None


def _value(hint: Any, given: Any, loc: tuple, problems: list[Problem]) -> Any:
    """``given`` converted to ``hint``, or None with a problem recorded."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        if given is None and type(None) in args:
            return None
        return _value(next(a for a in args if a is not type(None)), given, loc, problems)
    if dataclasses.is_dataclass(hint):
        return _section(hint, given, loc, problems)
    if origin is Literal:
        if given in args and type(given) in {type(a) for a in args}:
            return given
        choices = [repr(a) for a in args]
        listed = choices[0] if len(choices) == 1 else f"{', '.join(choices[:-1])} or {choices[-1]}"
        return _fail(problems, loc, f"Input should be {listed}", given)
    if origin is list:
        if not isinstance(given, list | tuple):
            return _fail(problems, loc, "Input should be a valid list", given)
        return [_value(args[0], v, (*loc, i), problems) for i, v in enumerate(given)]
    if origin is dict:
        if not isinstance(given, dict):
            return _fail(problems, loc, "Input should be a valid dictionary", given)
        return {k: _value(args[1], v, (*loc, k), problems) for k, v in given.items()}
    convert = _SCALARS.get(hint)
    if convert is None:  # Any
        return given
    try:
        return convert(given)
    except ValueError as exc:
        return _fail(problems, loc, str(exc), given)


def _fail(problems: list[Problem], loc: tuple, msg: str, given: Any) -> None:
    problems.append(Problem(loc, msg, given))
    return None


def _str(v: Any) -> str:
    if isinstance(v, str):
        return v
    raise ValueError("Input should be a valid string")


def _int(v: Any) -> int:
    if isinstance(v, bool | int):
        return int(v)
    if isinstance(v, float):
        if v.is_integer():
            return int(v)
        raise ValueError("Input should be a valid integer, got a number with a fractional part")
    if isinstance(v, str):
        try:
            return int(v.strip())
        except ValueError:
            try:
                f = float(v.strip())
            except ValueError:
                f = math.nan
            if f.is_integer():
                return int(f)
            raise ValueError("Input should be a valid integer, unable to parse string as an integer") from None
    raise ValueError("Input should be a valid integer")


def _float(v: Any) -> float:
    if isinstance(v, bool | int | float):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v.strip())
        except ValueError:
            raise ValueError("Input should be a valid number, unable to parse string as a number") from None
    raise ValueError("Input should be a valid number")


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float) and v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.strip().lower() in _TRUE | _FALSE:
        return v.strip().lower() in _TRUE
    raise ValueError("Input should be a valid boolean, unable to interpret input")


def _datetime(v: Any) -> datetime:
    if isinstance(v, datetime):
        return v
    if isinstance(v, str):
        try:
            return datetime.fromisoformat(v.strip())
        except ValueError:
            raise ValueError("Input should be a valid datetime or date") from None
    raise ValueError("Input should be a valid datetime or date")


def _path(v: Any) -> Path:
    if isinstance(v, str | Path):
        return Path(v)
    raise ValueError("Input is not a valid path for <class 'pathlib.Path'>")


_SCALARS = {str: _str, int: _int, float: _float, bool: _bool, Path: _path, datetime: _datetime}
