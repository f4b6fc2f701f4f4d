"""Association tables (``<asn>_asn.fits``) as STScI writes them, and a strict reader.

Layout copied from archive files: a primary header (FILETYPE='ASN_TABLE', ASN_ID, ASN_TAB,
ASN_STAT, ASN_PROD) and a binary table extension ``ASN`` with MEMNAME (14A, upper case), MEMTYPE
(14A) and MEMPRSNT (L); one row per exposure, then one per product. The simulator writes them for
users who start from FITS, and 2FITS builds them from telemetry with the same function.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from pipeline.core.errors import BadInput
from pipeline.core.names import BadName, DatasetName, parse_dataset

#: asn_type -> (member MEMTYPE, product MEMTYPE, last character of the product name)
ASN_KINDS: dict[str, tuple[str, str, str]] = {
    "DITHER": ("EXP-DTH", "PROD-DTH", "0"),
    "CR-SPLIT": ("EXP-CRJ", "PROD-CRJ", "1"),
    "REPEAT": ("EXP-RPT", "PROD-RPT", "1"),
}
_TYPE_OF_MEMTYPE = {exp: kind for kind, (exp, _, _) in ASN_KINDS.items()}
#: Header keywords copied from a member's primary header into the table's primary header.
COPIED_KEYWORDS = ("TELESCOP", "INSTRUME", "EQUINOX", "PRIMESI", "TARGNAME", "RA_TARG", "DEC_TARG",
                   "PROPOSID", "LINENUM", "PR_INV_L", "PR_INV_F", "PR_INV_M", "DETECTOR", "DATE")
_INSTRUME = {"wfc3": "WFC3", "acs": "ACS", "cos": "COS", "stis": "STIS", "nicmos": "NICMOS", "wfpc2": "WFPC2"}


@dataclass(frozen=True)
class AsnTable:
    """What an association table says: its name, kind, exposures and products."""

    name: str
    asn_type: str
    members: tuple[str, ...]  # exposure rootnames, lower case, in table order
    products: tuple[str, ...]
    present: Mapping[str, bool]  # MEMPRSNT per exposure


def product_name(asn_name: str, asn_type: str) -> str:
    return asn_name[:8] + ASN_KINDS[asn_type][2]


def build_asn_table(asn_name: str, members: Sequence[str], asn_type: str, *,
                    header: Mapping[str, object] | None = None,
                    present: Mapping[str, bool] | None = None) -> fits.HDUList:
    """The ``_asn.fits`` HDUList of an association.

    ``members`` are exposure rootnames; ``asn_type`` is DITHER, CR-SPLIT or REPEAT; ``header`` (a
    member's primary header, optional) supplies target and proposal keywords; ``present`` marks
    members that are missing (MEMPRSNT=F), all present by default.
    """
    asn = parse_dataset(asn_name)
    if not asn.is_association:
        raise BadName(f"{asn.name} is not an association name (must end in '0nm' with a final '0')")
    if asn_type not in ASN_KINDS:
        raise ValueError(f"unknown association type {asn_type!r}: expected one of {', '.join(ASN_KINDS)}")
    names = [parse_dataset(m) for m in members]
    if not names:
        raise ValueError(f"association {asn.name} has no members")
    for m in names:
        if not m.is_exposure or m.instrument_letter != asn.instrument_letter:
            raise BadName(f"{m.name} cannot be a member of {asn.name}: expected an exposure of the same instrument")
    exp_type, prod_type, _ = ASN_KINDS[asn_type]
    flags = present or {}
    rows = [(m.name.upper(), exp_type, bool(flags.get(m.name, True))) for m in names]
    rows.append((product_name(asn.name, asn_type).upper(), prod_type, True))

    primary = fits.Header()
    primary["NEXTEND"] = (1, "Number of standard extensions")
    primary["GROUPS"] = (False, "image is in group format")
    if header and "DATE" in header:
        primary["DATE"] = (header["DATE"], "date this file was written (yyyy-mm-dd)")
    primary["FILENAME"] = (asn.file("asn"), "name of file")
    primary["FILETYPE"] = ("ASN_TABLE", "type of data found in data file")
    primary["TELESCOP"] = ("HST", "telescope used to acquire data")
    primary["INSTRUME"] = (_INSTRUME.get(asn.instrument, asn.instrument.upper()),
                           "identifier for instrument used to acquire data")
    for key in COPIED_KEYWORDS:
        if header and key in header and key not in primary:
            primary[key] = header[key]
    primary["ROOTNAME"] = (asn.name, "rootname of the observation set")
    primary["ASN_ID"] = (asn.name, "unique identifier assigned to association")
    primary["ASN_TAB"] = (asn.file("asn"), "name of the association table")
    complete = all(r[2] for r in rows)
    primary["ASN_STAT"] = ("COMPLETE" if complete else "INCOMPLETE", "status of association (COMPLETE/INCOMPLETE)")
    primary["ASN_PROD"] = (False, "product created (T/F)")

    columns = [
        fits.Column(name="MEMNAME", format="14A", disp="A14", array=np.array([r[0] for r in rows])),
        fits.Column(name="MEMTYPE", format="14A", disp="A14", array=np.array([r[1] for r in rows])),
        fits.Column(name="MEMPRSNT", format="L", disp="L6", array=np.array([r[2] for r in rows])),
    ]
    # BinTableHDU(data=...) imports astropy.table (~0.25 s with its asdf plugins) only to ask whether
    # the data is a Table; giving the FITS_rec to an empty HDU is what its __init__ then does anyway
    table = fits.BinTableHDU(name="ASN")
    table.data = fits.FITS_rec.from_columns(columns)
    table.header["EXTVER"] = 1
    table.header["INHERIT"] = (True, "inherit the primary header")
    table.header["ROOTNAME"] = (asn.name, "rootname of the observation set")
    table.header["EXPNAME"] = (asn.name, "exposure identifier")
    return fits.HDUList([fits.PrimaryHDU(header=primary), table])


def read_asn_table(path: Path | str) -> AsnTable:
    """Read and validate an ``_asn.fits``; raise :class:`BadInput` naming the file and the problem."""
    path = Path(path)
    try:
        with fits.open(path) as hdul:
            if "ASN" not in hdul:
                raise BadInput(f"{path.name}: no ASN table extension", path=path)
            data = hdul["ASN"].data
            for col in ("MEMNAME", "MEMTYPE", "MEMPRSNT"):
                if data is None or col not in data.columns.names:
                    raise BadInput(f"{path.name}: ASN table lacks column {col}", path=path, keyword=col)
            rows = [(str(n).strip().lower(), str(t).strip().upper(), bool(p))
                    for n, t, p in zip(data["MEMNAME"], data["MEMTYPE"], data["MEMPRSNT"], strict=True)]
            asn_id = str(hdul[0].header.get("ASN_ID", "")).strip().lower()
    except OSError as exc:
        raise BadInput(f"{path.name}: not a readable FITS file ({exc})", path=path) from None
    try:
        name = DatasetName(asn_id) if asn_id else parse_dataset(path.name.split("_")[0])
        exposures = [(DatasetName(n), t, p) for n, t, p in rows if t.startswith("EXP-")]
        products = tuple(DatasetName(n).name for n, t, _ in rows if t.startswith("PROD-"))
    except BadName as exc:
        raise BadInput(f"{path.name}: {exc}", path=path) from None
    if not exposures:
        raise BadInput(f"{path.name}: association {name} lists no exposures", path=path, keyword="MEMTYPE")
    kinds = {_TYPE_OF_MEMTYPE.get(t) for _, t, _ in exposures}
    if None in kinds or len(kinds) != 1:
        raise BadInput(f"{path.name}: unexpected member types {sorted({t for _, t, _ in exposures})}",
                       path=path, keyword="MEMTYPE")
    return AsnTable(name=name.name, asn_type=kinds.pop() or "", members=tuple(m.name for m, _, _ in exposures),
                    products=products, present={m.name: p for m, _, p in exposures})
