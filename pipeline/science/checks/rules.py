"""The rule table machinery shared by BC and AC.

A check is a list of :class:`Rule` rows rather than a long function, so that operators can list what
is checked (``--list-rules``), a failure line always names its rule, and every rule runs even after
another has failed: one pass reports everything wrong with a dataset.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from pipeline.core.errors import CheckFailed

S = TypeVar("S")


@dataclass(frozen=True)
class Failure:
    """One thing wrong, named by rule, file and keyword (or extension, or column)."""

    rule: str
    file: str
    keyword: str
    message: str

    def line(self) -> str:
        return f"{self.rule}: {self.file}: {self.keyword}: {self.message}"


@dataclass(frozen=True)
class Rule(Generic[S]):
    """A named check. ``check`` yields ``(keyword, message)`` for each problem it finds in a subject."""

    name: str
    description: str
    check: Callable[[S], Iterable[tuple[str, str]]]


def run_rules(rules: Sequence[Rule[S]], subject: S, file: str | Path) -> list[Failure]:
    """Run every rule on ``subject``; a rule that crashes is itself reported, the rest still run."""
    label = Path(file).name
    failures: list[Failure] = []
    for rule in rules:
        try:
            failures.extend(Failure(rule.name, label, kw, msg) for kw, msg in rule.check(subject))
        except Exception as exc:  # a check must never hide the other checks' findings
            where = traceback.extract_tb(exc.__traceback__)[-1]
            failures.append(Failure(rule.name, label, "-", f"check could not run: {type(exc).__name__}: "
                                    f"{exc} ({Path(where.filename).name}:{where.lineno})"))
    return failures


def raise_failures(failures: Sequence[Failure]) -> None:
    """Raise :class:`CheckFailed` carrying one line per failure (nothing if all passed)."""
    if failures:
        raise CheckFailed([f.line() for f in failures])


def describe(rules: Sequence[Rule[S]]) -> list[tuple[str, str]]:
    return [(r.name, r.description) for r in rules]
