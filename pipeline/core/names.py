"""HST dataset names (``ipppssoot``) and the file names built from them.

A dataset name arrives from DANs, headers, operators and DAG arguments, and ends up in paths, so
it is never trusted: every path in owlpipe is built from a :class:`DatasetName`, which only exists
once its text matched the convention (HST Data Handbook, "File Names"):

* ``i``   instrument letter (table below);
* ``ppp`` program id, ``ss`` observation set, ``oo`` observation id (alphanumeric);
* ``t``   transmission source for an exposure (``m``..``t``), or a digit for an association
  (``0``) or one of its products (``1``-``9``): association names end in ``0nm``, e.g.
  ``j9cv58020`` or ``n4rk05011``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

#: Instrument letter → (instrument, OSF data_id class).
INSTRUMENT_LETTERS: dict[str, tuple[str, str]] = {
    "f": ("fgs", "fgs"),
    "i": ("wfc3", "wf3"),
    "j": ("acs", "acs"),
    "l": ("cos", "cos"),
    "n": ("nicmos", "nic"),
    "o": ("stis", "sti"),
    "s": ("engineering", "eng"),
    "u": ("wfpc2", "wp2"),
    "v": ("hsp", "hsp"),
    "w": ("wfpc", "wfp"),
    "x": ("foc", "foc"),
    "y": ("fos", "fos"),
    "z": ("hrs", "hrs"),
}

#: Transmission-source letters of an exposure name.
TRANSMISSION = {
    "m": "merged real-time and recorded",
    "n": "retransmitted merged",
    "o": "retransmitted real-time",
    "p": "retransmitted recorded",
    "q": "solid-state recorder",
    "r": "real-time (not recorded)",
    "s": "retransmitted solid-state recorder",
    "t": "tape recorder",
}

_NAME_RE = re.compile(r"^[a-z][a-z0-9]{3}[a-z0-9]{2}[a-z0-9]{2}[a-z0-9]$")

#: File suffixes per instrument: what the pipeline reads and writes for each.
_COMMON = ("raw", "asn", "spt", "trl")
SUFFIXES: dict[str, tuple[str, ...]] = {
    "wfc3": (*_COMMON, "flt", "flc", "crj", "crc", "drz", "drc", "ima", "blv_tmp", "blc_tmp"),
    "acs": (*_COMMON, "flt", "flc", "crj", "crc", "sfl", "drz", "drc", "blv_tmp", "blc_tmp"),
    "cos": (
        *_COMMON, "rawtag", "rawtag_a", "rawtag_b", "rawacq", "corrtag_a", "corrtag_b", "flt_a", "flt_b",
        "counts_a", "counts_b", "x1d", "x1dsum", "x1dsum1", "x1dsum2", "x1dsum3", "x1dsum4", "lampflash",
        "csum_a", "csum_b", "jif", "jit", "flt", "counts", "csum",
    ),
    "stis": (*_COMMON, "wav", "tag", "epc", "flt", "crj", "sx1", "x1d", "x2d", "sx2"),
    "wfpc2": ("d0m", "q0m", "shm", "c0m", "c1m", "trl"),
    "nicmos": (*_COMMON, "ima", "cal", "mos"),
}


class BadName(ValueError):
    """A dataset or file name that does not follow the HST naming convention."""


@dataclass(frozen=True)
class DatasetName:
    """A validated ``ipppssoot`` (exposure) or association/product name, always lower case."""

    name: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.fullmatch(self.name):
            raise BadName(
                f"invalid dataset name {self.name!r}: expected 9 characters 'ipppssoot' "
                "(instrument letter, program, obset, obsnum, transmission), letters and digits only"
            )
        if self.name[0] not in INSTRUMENT_LETTERS:
            known = "".join(sorted(INSTRUMENT_LETTERS)).upper()
            raise BadName(f"invalid dataset name {self.name!r}: unknown instrument letter "
                          f"{self.name[0].upper()!r} (known: {known})")
        last = self.name[8]
        if not last.isdigit() and last not in TRANSMISSION:
            raise BadName(f"invalid dataset name {self.name!r}: last character {last!r} is neither "
                          "a transmission letter (m-t) nor an association digit")
        if last.isdigit() and self.name[6] != "0":
            raise BadName(f"invalid association name {self.name!r}: association and product names "
                          "end in '0nm' (7th character must be '0')")

    def __str__(self) -> str:
        return self.name

    @property
    def instrument_letter(self) -> str:
        return self.name[0]

    @property
    def instrument(self) -> str:
        return INSTRUMENT_LETTERS[self.name[0]][0]

    @property
    def data_id(self) -> str:
        """The three-letter OSF class (``wf3``, ``acs``, ...)."""
        return INSTRUMENT_LETTERS[self.name[0]][1]

    @property
    def program(self) -> str:
        return self.name[1:4]

    @property
    def obset(self) -> str:
        return self.name[4:6]

    @property
    def obsnum(self) -> str:
        return self.name[6:8]

    @property
    def transmission(self) -> str:
        return self.name[8]

    @property
    def is_association(self) -> bool:
        """True for association names (``...0n0``)."""
        return self.name[8] == "0"

    @property
    def is_product(self) -> bool:
        """True for association product names (``...0n1`` .. ``...0n9``)."""
        return self.name[8].isdigit() and self.name[8] != "0"

    @property
    def is_exposure(self) -> bool:
        return not self.name[8].isdigit()

    def product(self, index: int = 1) -> DatasetName:
        """The association's product name with the given index (``j8cb010b0`` → ``j8cb010b1``)."""
        if not self.is_association:
            raise BadName(f"{self.name} is not an association name; it has no products")
        if not 1 <= index <= 9:
            raise BadName(f"product index {index} out of range 1..9")
        return DatasetName(self.name[:8] + str(index))

    def file(self, suffix: str, ext: str = "fits") -> str:
        """File name for this dataset, e.g. ``j8bt05njq_raw.fits``."""
        return file_name(self, suffix, ext)


def parse_dataset(text: str) -> DatasetName:
    """Validate user, header or DAN input as a dataset name (case-insensitive, surrounding blanks ignored)."""
    if not isinstance(text, str):
        raise BadName(f"invalid dataset name {text!r}: not a string")
    return DatasetName(text.strip().lower())


_SUFFIX_RE = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)*$")
_EXT_RE = re.compile(r"^[a-z0-9]+(\.[a-z0-9]+)*$")


def file_name(dataset: DatasetName | str, suffix: str, ext: str = "fits") -> str:
    """Build ``<dataset>_<suffix>.<ext>`` from a validated name and a plain suffix."""
    ds = dataset if isinstance(dataset, DatasetName) else parse_dataset(dataset)
    if not _SUFFIX_RE.fullmatch(suffix):
        raise BadName(f"invalid file suffix {suffix!r}")
    if not _EXT_RE.fullmatch(ext):
        raise BadName(f"invalid file extension {ext!r}")
    return f"{ds.name}_{suffix}.{ext}"


#: An exposure's telemetry pod file: ``<ipppssoot>.pod`` (``docs/pod-format.md``).
POD_EXTENSION = ".pod"


def pod_name(rootname: DatasetName | str) -> str:
    """File name of an exposure's pod: ``<ipppssoot>.pod``."""
    return parse_dataset(str(rootname)).name + POD_EXTENSION


_FILE_RE = re.compile(r"^([A-Za-z0-9]{9})_([a-z0-9]+(?:_[a-z0-9]+)*)\.([a-z0-9.]+)$", re.IGNORECASE)


def split_file_name(path: Path | str) -> tuple[DatasetName, str, str]:
    """Split ``j8bt05njq_raw.fits`` into (dataset, suffix, extension); raise :class:`BadName` otherwise."""
    base = Path(path).name
    m = _FILE_RE.fullmatch(base)
    if not m:
        raise BadName(f"file name {base!r} is not '<ipppssoot>_<suffix>.<ext>'")
    return parse_dataset(m.group(1)), m.group(2).lower(), m.group(3).lower()


def rootname_of(path: Path | str) -> DatasetName:
    """The dataset a file belongs to, from its name."""
    return split_file_name(path)[0]


def suffix_known(instrument: str, suffix: str) -> bool:
    """Whether ``suffix`` is one the instrument's pipeline uses (previews add ``.jpg``/``_thumb``)."""
    return suffix in SUFFIXES.get(instrument, ())
