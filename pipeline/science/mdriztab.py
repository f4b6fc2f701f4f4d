"""AstroDrizzle's parameters from the MDRIZTAB reference file, chosen as STScI's pipeline chooses them.

The STScI pipeline (``runastrodriz``) runs AstroDrizzle with ``mdriztab=True``: drizzlepac's
``mdzhandler`` reads the MDRIZTAB named in the *first* input's primary header (the file RF's best
references put there), takes the rows whose ``filter`` equals the inputs' filter string (WFC3
``FILTER``; ACS ``FILTER1,FILTER2`` without blanks) or else the ``ANY`` rows, and of those the last
one whose ``numimages`` the number of inputs reaches (row 1 when none does). :func:`choose` makes the
same choice here, so the product's history can say which table, row and values were used; the row's
values are translated into AstroDrizzle parameters by drizzlepac's own ``mdzhandler`` code, so they
are exactly what ``mdriztab=True`` would set.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from astropy.io import fits

from pipeline.core.errors import BadInput, MissingReference
from pipeline.science.refs import is_na, locate_reference

#: Header keywords holding the filter names, per instrument (drizzlepac's ``fileutil.getFilterNames``).
FILTER_KEYWORDS = {"ACS": ("FILTER1", "FILTER2"), "WFPC2": ("FILTNAM1", "FILTNAM2"), "STIS": ("OPT_ELEM", "FILTER"),
                   "NICMOS": ("FILTER", "FILTER2"), "WFC3": ("FILTER", "FILTER2")}
#: Parameters MD sets itself whatever a table says: where and how it runs, not what it computes.
OPERATIONAL = frozenset({"output", "runfile", "updatewcs", "num_cores", "in_memory", "preserve", "clean",
                         "build", "restore", "overwrite", "wcskey"})


@dataclass(frozen=True)
class Choice:
    """The MDRIZTAB row used for one drizzle run."""

    table: str          # header value, e.g. iref$95109260i_mdz.fits
    path: Path
    row: int            # 1-based, as drizzlepac reports it
    filters: str        # the inputs' filter string the rows were matched against
    row_filter: str
    numimages: int
    parameters: dict[str, Any]

    def history(self) -> list[str]:
        """HISTORY lines (each fits one card) for the product: table, row, why that row, and every
        parameter it set."""
        lines = [f"AstroDrizzle parameters: MDRIZTAB {self.table} row {self.row}",
                 f"  row filter {self.row_filter}, numimages {self.numimages}; inputs' filter "
                 f"{self.filters or 'none'}"]
        lines += [f"  {key} = {value!r}" for key, value in sorted(self.parameters.items())]
        return lines


def filter_string(header: fits.Header) -> str:
    """The inputs' filter names joined as drizzlepac joins them (blank values left out)."""
    keys = FILTER_KEYWORDS.get(str(header.get("INSTRUME", "")).strip().upper(), ())
    return ",".join(str(header[k]) for k in keys if k in header and str(header[k]).strip())


def pick_row(filters: list[str], numimages: list[int], wanted: str, n_inputs: int) -> int:
    """0-based row index, exactly as ``mdzhandler.getMdriztabParameters`` picks it."""
    rows = [i for i, f in enumerate(filters) if f == wanted] or [i for i, f in enumerate(filters) if f == "ANY"]
    chosen = 0
    for i in rows:
        if n_inputs >= numimages[i]:
            chosen = i
    return chosen


def table_value(header: fits.Header) -> str | None:
    """The MDRIZTAB keyword's value, or None when the header names none (absent, blank or N/A)."""
    value = str(header.get("MDRIZTAB", "")).strip()
    return None if is_na(value) else value


def choose(first_input: Path, n_inputs: int, cache: Path) -> Choice | None:
    """The MDRIZTAB row for ``n_inputs`` inputs led by ``first_input``; None when its header names no
    MDRIZTAB. A named table that cannot be found or read is an error (the STScI pipeline stops too)."""
    header = fits.getheader(first_input, 0)
    value = table_value(header)
    if value is None:
        return None
    path = locate_reference(value, cache)
    if path is None or not path.is_file():
        raise MissingReference(f"{first_input.name}: MDRIZTAB {value} not found (looked for {path})",
                               keyword="MDRIZTAB")
    wanted = filter_string(header)
    try:
        with fits.open(path, memmap=False) as hdul:
            data = hdul[1].data
            index = pick_row([str(f).strip() for f in data.field("filter")],
                             [int(n) for n in data.field("numimages")], wanted, n_inputs)
            record = data[index]
            parameters = _interpret(record)
            row_filter, numimages = str(record["filter"]).strip(), int(record["numimages"])
    except (OSError, KeyError, IndexError, ValueError, TypeError) as exc:
        raise BadInput(f"MDRIZTAB {path.name} is not a readable AstroDrizzle parameter table "
                       f"({type(exc).__name__}: {exc})", path=None, keyword="MDRIZTAB") from None
    return Choice(value, path, index + 1, wanted, row_filter, numimages, parameters)


def _interpret(record: fits.FITS_record) -> dict[str, Any]:
    """drizzlepac's own translation of a row into parameters (``staticfile`` dropped, as it drops it)."""
    from pipeline.science.drizzle_exact import lean_import

    mdzhandler = lean_import("mdzhandler")
    with contextlib.redirect_stdout(io.StringIO()):  # it prints what it does not recognise
        parameters = mdzhandler._interpretMdriztabPars(record)
    parameters.pop("staticfile", None)
    return parameters


def split_operational(parameters: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(the parameters MD passes on, the names of those MD sets itself and therefore ignores)."""
    kept = {k: v for k, v in parameters.items() if k not in OPERATIONAL}
    return kept, sorted(set(parameters) - set(kept))
