"""CTE reference files for the synthetic observatory in the real UVIS layouts, and the forward
model that puts CTE trails into simulated raws with the same trap parameters.

PCTETAB (FILETYPE PIXCTE): primary CTE_NAME ... FIXROCR, QPROF (999 rows, unused rows at
QLEV_Q = 999999), SCLBYCOL (8412 rows), RPROF and CPROF images (999 x 100). BIACFILE (CTEBIAS) is
a raw-format bias image like BIASFILE.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from pipeline.science.calib.cte import uvis
from pipeline.science.calib.cte.acs import trail_chip
from pipeline.science.calib.cte.acs_pctetab import AcsCteTable, read_acs_pctetab
from pipeline.science.calib.cte.pctetab import CteTable
from pipeline.science.calib.cte.raz import COLS, ROWS, make_raz, undo_raz
from pipeline.science.calib.cte.readout import transfer

NTRAPS = 999
UNUSED = 999999.0
UVIS_DATE0 = 54962.0
PIN_DATE = 56173.0


def trap_model(active: int = 20, qmax: float = 5000.0, density: float = 0.35, scale: float = 8.0) -> CteTable:
    """A realistic-shaped trap table: ``active`` traps with levels log-spaced from 1 e- to ``qmax``,
    each holding ``density`` e-, releasing with an exponential of ``scale`` rows over 60 rows."""
    qlev = np.full(NTRAPS, UNUSED)
    qlev[:active] = np.geomspace(1.0, qmax, active)
    dpde = np.zeros(NTRAPS)
    dpde[:active] = density
    t = np.arange(100, dtype=np.float64)
    release = np.exp(-t / scale) * (1 - np.exp(-1 / scale))
    release[60:] = 0.0
    remaining = np.clip(1.0 - np.cumsum(release), 0.0, 1.0)
    rprof = np.repeat(release[:, None], NTRAPS, axis=1).astype(np.float32)
    cprof = np.repeat(remaining[:, None], NTRAPS, axis=1).astype(np.float32)
    return CteTable(name="owlsim pixelCTE", version="2.0", date0=UVIS_DATE0, date1=PIN_DATE, tlen=60, nfor=5,
                    npar=7, nsmd=0, trsh=-10.0, fixrocr=1, qlev=qlev, dpde=dpde, rprof=rprof, cprof=cprof)


def realistic_model(*, qmax: float = 1e5, phi_1: float = 1.5, slope: float = 0.45, steep_below: int = 4) -> CteTable:
    """A trap table shaped like calwf3's production PCTETABs, for benchmarks and comparisons with
    calwf3 at realistic cost: all 999 QPROF rows active. Each trap grabs one particular electron
    of a packet (the first, the second, ... the ten-thousandth; WFC3 Data Handbook 6.4), so
    QLEV_Q holds distinct integer levels: every electron number up to where log spacing from 1 to
    ``qmax`` e- is wider than one electron, log-spaced above. The cumulative trap count seen at the
    top of the chip grows as ``phi_1 * q**slope``; DPDE_W is its increment per trap. Release: about
    20 % in the first upstream pixel, 10 % in the second, ... (1/t over 60 transfers); the traps
    holding the first ``steep_below`` electrons release everything within 6 transfers."""
    grid = np.round(np.geomspace(1.0, qmax, NTRAPS))
    qlev = np.maximum.accumulate(grid - np.arange(NTRAPS)) + np.arange(NTRAPS)  # strictly increasing integers
    phi = phi_1 * qlev ** slope
    dpde = np.diff(phi, prepend=0.0)
    t = np.arange(1, 101, dtype=np.float64)
    slow = np.where(t <= 60, 1.0 / t, 0.0)
    fast = np.where(t <= 6, np.exp(-t), 0.0)
    rprof = np.empty((100, NTRAPS))
    for w in range(NTRAPS):
        shape = fast if qlev[w] <= steep_below else slow
        rprof[:, w] = shape / shape.sum()
    cprof = np.cumsum(rprof[::-1], axis=0)[::-1]   # what is still held after step t: the later releases
    cprof = np.vstack([cprof[1:], np.zeros((1, NTRAPS))])
    return CteTable(name="owlsim pixelCTE realistic", version="2.0", date0=UVIS_DATE0, date1=PIN_DATE, tlen=60,
                    nfor=5, npar=7, nsmd=0, trsh=-10.0, fixrocr=1, qlev=qlev, dpde=dpde,
                    rprof=rprof.astype(np.float32), cprof=cprof.astype(np.float32))


def observatory_model() -> CteTable:
    """The synthetic observatory's UVIS traps: what its raws are read out through and the PCTETAB
    it delivers. Whole-electron levels, as QLEV_Q is an integer column in the real tables."""
    model = trap_model()
    return replace(model, qlev=np.round(model.qlev))


def pctetab_hdus(table: CteTable, primary: fits.Header | None = None) -> fits.HDUList:
    """The PCTETAB as an HDUList: ``primary`` (CRDS selection keywords) plus the model keywords,
    QPROF, SCLBYCOL, RPROF and CPROF, with the DESCRIP columns crds certify asks for."""
    header = fits.Header() if primary is None else primary.copy()
    header.update(INSTRUME="WFC3", DETECTOR="UVIS", FILETYPE="PIXCTE", BINAXIS1=1, BINAXIS2=1, **table.keywords())
    header.setdefault("USEAFTER", "May 11 2009 00:00:00")
    header.setdefault("PEDIGREE", "INFLIGHT 11/05/2009 01/01/2020")
    header.setdefault("DESCRIP", "synthetic pixel-based CTE model")
    describe = [fits.Column(name="DESCRIP", format="40A", array=np.array(["owlpipe synthetic trap"] * NTRAPS))]
    qprof = fits.BinTableHDU.from_columns([
        fits.Column(name="W", format="J", array=np.arange(1, NTRAPS + 1)),
        _level_column(table.qlev),
        fits.Column(name="DPDE_W", format="D", array=table.dpde), *describe], name="QPROF")
    iz = np.arange(1, COLS + 1)
    ones = np.ones(COLS)
    sclbycol = fits.BinTableHDU.from_columns(
        [fits.Column(name="IZ", format="J", array=iz)]
        + [fits.Column(name=n, format="D", array=ones) for n in ("SENS_0512", "SENS_1024", "SENS_1536", "SENS_2048")]
        + [fits.Column(name="DESCRIP", format="40A", array=np.array(["flat column sensitivity"] * COLS))],
        name="SCLBYCOL")
    for hdu in (qprof, sclbycol):
        hdu.header["FILETYPE"] = "PIXCTE"
    extensions = [qprof, sclbycol, fits.ImageHDU(table.rprof, name="RPROF"), fits.ImageHDU(table.cprof, name="CPROF")]
    header["NEXTEND"] = (len(extensions), "number of extensions")
    return fits.HDUList([fits.PrimaryHDU(header=header), *extensions])


def _level_column(qlev: np.ndarray) -> fits.Column:
    """QLEV_Q as the real tables have it (integers); a table with fractional levels keeps them."""
    if np.array_equal(qlev, np.round(qlev)):
        return fits.Column(name="QLEV_Q", format="J", array=qlev.astype(np.int32))
    return fits.Column(name="QLEV_Q", format="D", array=qlev)


def write_pctetab(path: Path, table: CteTable, *, useafter: str = "May 11 2009 00:00:00") -> Path:
    primary = fits.Header()
    primary["USEAFTER"] = useafter
    pctetab_hdus(table, primary).writeto(path, overwrite=True)
    return path


def time_scaling(expstart: float, table: CteTable) -> np.ndarray:
    """calwf3's per-row scaling of the trap density (rows counted from the serial register)."""
    return uvis.time_scaling(expstart, table.date0, table.date1, 1)[1][:, 0]


def trail_charge(charge: np.ndarray, rows: np.ndarray, serial_at_bottom: bool, table: CteTable, *,
                 expstart: float) -> np.ndarray:
    """Charge (e-, readout layout, rows ``rows`` of a raw chip) after the parallel transfer through
    the traps: NITPAR sub-steps of the readout model, each column independent. A subarray is
    placed at its rows of the full chip (empty elsewhere), as the transfer sees it."""
    from_register = rows if serial_at_bottom else ROWS - 1 - rows
    height = int(from_register.max()) + 1  # rows farther out never reach the register through these
    column = np.zeros((height, charge.shape[1]))
    column[from_register] = charge
    fff = uvis.time_scaling(expstart, table.date0, table.date1, charge.shape[1])[1][:height]
    return transfer(column, fff, table)[from_register].astype(np.float32)


def add_trails(cd: np.ndarray, ab: np.ndarray, table: CteTable, *, expstart: float, gain: float,
               bias: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """Read two raw chips in DN (bias ``bias`` per amp C, D, A, B) out through the trap model: NITPAR
    sub-steps of the readout on the charge above bias, the time scaling of EXPSTART. Returns the
    trailed chips in DN (float32)."""
    raz = make_raz(cd.astype(np.float64), ab.astype(np.float64))
    n = COLS // 4
    levels = np.repeat(np.asarray(bias, dtype=np.float64), n)[None, :]
    charge = (raz - levels) * gain
    fff = uvis.time_scaling(expstart, table.date0, table.date1, COLS)[1]
    obs = transfer(charge, fff, table)
    return undo_raz((obs / gain + levels).astype(np.float32))


# ------------------------------------------------------------------------------------ ACS/WFC

ACS_TRAPS = 9999
ACS_SCALE_COLUMNS = 8192
ACS_DATE0 = 52335.0          # ACS installation (March 2002)
ACS_PIN_DATE = 57710.0


def acs_trap_set(active: int = 20, qmax: float = 5000.0, density: float = 0.35,
                 scale: float = 8.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(QLEV_Q, DPDE_W, RPROF, CPROF) of one ACS set: ``active`` traps at integer levels log-spaced
    from 1 e- to ``qmax``, the same release profile as :func:`trap_model`, 9999 rows."""
    base = trap_model(active=active, qmax=qmax, density=density, scale=scale)
    qlev = np.full(ACS_TRAPS, UNUSED)
    qlev[:active] = np.round(base.qlev[:active])
    dpde = np.zeros(ACS_TRAPS)
    dpde[:active] = density
    rprof = np.repeat(base.rprof[:, :1], ACS_TRAPS, axis=1)
    cprof = np.repeat(base.cprof[:, :1], ACS_TRAPS, axis=1)
    return qlev, dpde, rprof, cprof


def write_acs_pctetab(path: Path, *, useafter: str = "Mar 01 2002 00:00:00", **model: Any) -> Path:
    """The ACS/WFC PCTETAB of :func:`acs_pctetab_hdus` written to ``path``."""
    primary = fits.Header()
    primary["USEAFTER"] = useafter
    acs_pctetab_hdus(primary, **model).writeto(path, overwrite=True)
    return path


def acs_pctetab_hdus(primary_header: fits.Header | None = None, *, parallel: tuple[np.ndarray, ...] | None = None,
                     serial: tuple[np.ndarray, ...] | None = None, nfor: int = 5, npar: int = 7,
                     serial_npar: int = 3, rn: float = 4.0, trsh: float = -10.0, fixrocr: int = 1,
                     column_scale: np.ndarray | None = None) -> fits.HDUList:
    """The calacs 10.5 ACS/WFC PCTETAB ("Par/Serial PixelCTE 2023"): primary keywords (over
    ``primary_header``: CRDS selection keywords), then the parallel set (extensions 1-4) and one
    serial set per amp A, B, C, D (5-8 ... 17-20), each QPROF (9999 rows: W, QLEV_Q, DPDE_W,
    DESCRIP), SCLBYCOL (8192 rows: IZ, SENS_0512..SENS_2048, DESCRIP), RPROF and CPROF
    (9999 x 100). ``column_scale`` (8192,) multiplies every SENS column."""
    parallel = parallel or acs_trap_set()
    serial = serial or acs_trap_set(active=12, density=0.08, scale=4.0)
    primary = fits.PrimaryHDU(header=None if primary_header is None else primary_header.copy())
    primary.header.update(INSTRUME="ACS", DETECTOR="WFC", FILETYPE="PIXCTE",
                          CTE_NAME="Par/Serial PixelCTE 2023", CTE_VER="3.0", PCTERNOI=rn, PCTENSMD=0, PCTETRSH=trsh,
                          FIXROCR=fixrocr)
    primary.header.setdefault("USEAFTER", "Mar 01 2002 00:00:00")
    primary.header.setdefault("PEDIGREE", "INFLIGHT 01/03/2002 01/01/2024")
    primary.header.setdefault("DESCRIP", "synthetic parallel/serial pixel CTE model")
    sens = np.ones(ACS_SCALE_COLUMNS) if column_scale is None else np.asarray(column_scale, np.float64)
    hdus: list[fits.hdu.base.ExtensionHDU] = []
    for extver, (qlev, dpde, rprof, cprof) in enumerate([parallel, serial, serial, serial, serial], start=1):
        label = "parallel" if extver == 1 else f"serial amp {'ABCD'[extver - 2]}"
        qprof = fits.BinTableHDU.from_columns([
            fits.Column(name="W", format="I", array=np.arange(1, ACS_TRAPS + 1)),
            fits.Column(name="QLEV_Q", format="J", array=np.minimum(qlev, UNUSED).astype(np.int64)),
            fits.Column(name="DPDE_W", format="E", array=dpde),
            fits.Column(name="DESCRIP", format="20A", array=np.full(ACS_TRAPS, label))], name="QPROF", ver=extver)
        qprof.header.update(CTEDATE0=ACS_DATE0 if extver == 1 else 54962.0, CTEDATE1=ACS_PIN_DATE, PCTETLEN=60,
                            PCTENFOR=nfor, PCTENPAR=npar if extver == 1 else serial_npar)
        sclbycol = fits.BinTableHDU.from_columns(
            [fits.Column(name="IZ", format="I", array=np.arange(ACS_SCALE_COLUMNS))]
            + [fits.Column(name=n, format="E", array=sens * f)
               for n, f in (("SENS_0512", 0.9), ("SENS_1024", 1.0), ("SENS_1536", 1.05), ("SENS_2048", 1.1))]
            + [fits.Column(name="DESCRIP", format="20A", array=np.full(ACS_SCALE_COLUMNS, label))],
            name="SCLBYCOL", ver=extver)
        hdus += [qprof, sclbycol, fits.ImageHDU(rprof.astype(np.float32), name="RPROF", ver=extver),
                 fits.ImageHDU(cprof.astype(np.float32), name="CPROF", ver=extver)]
    for hdu in hdus:
        hdu.header["FILETYPE"] = "PIXCTE"
    primary.header["NEXTEND"] = (len(hdus), "number of extensions")  # as every CDBS reference file has
    return fits.HDUList([primary, *hdus])


@lru_cache(maxsize=1)
def acs_observatory_model() -> AcsCteTable:
    """The synthetic observatory's ACS/WFC traps, read back from the PCTETAB it delivers (the
    default :func:`acs_pctetab_hdus`), so raws are trailed with exactly the table's parameters."""
    with tempfile.TemporaryDirectory(prefix="owl-acscte-") as scratch:
        return read_acs_pctetab(write_acs_pctetab(Path(scratch) / "model_cte.fits"))


def add_acs_trails(electrons: np.ndarray, chip: int, *, expstart: float, ccdamp: str = "ABCD") -> np.ndarray:
    """A trimmed ACS/WFC chip or subarray (e-) read through amps ``ccdamp`` and the observatory's
    traps: per amp the parallel transfer, then (after SM4, as calacs corrects it) the serial one: the
    inverse of calacs's ACSCTE on the same table (:func:`pipeline.science.calib.cte.acs.trail_chip`)."""
    return trail_chip(electrons, acs_observatory_model(), chip, expstart=expstart, ccdamp=ccdamp)
