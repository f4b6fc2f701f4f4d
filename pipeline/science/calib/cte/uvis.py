"""WF3CTE: the CTE branch of calwf3, raw -> ``rac`` (raw format, SCI in DN, CTE removed).

Runs first, on the raw file, before any bias-level step: BIACFILE subtraction, RAZ layout,
residual bias per amp, electrons, PCTERNOI, the inversion, then back to DN added to the untouched
raw values. The ``rac`` exposure then goes through WF3CCD/WF32D (with DRKCFILE) into ``_flc``.
Side effects reproduced from calwf3: the rac DQ is all zero and its ERR is the raw ERR combined
in quadrature with the BIACFILE ERR.

Subarrays (``wf3cte.c``, ``subtools.c``): the subarray is pasted into an empty full frame at its
LTV corner (past the 60 virtual columns when it starts in amp B/D) with a mask of its pixels; the
BIACFILE is cut at its corner (``doCteBias``: from x >= 2072 shifted by 60, a straddling subarray
skips the virtual columns); the residual bias comes from the physical prescan (RAZ columns 5..24)
of the masked pixels, removed and converted to electrons on the masked pixels only; the inversion
runs on the whole frame (empty columns cost nothing: every search starts at the first charge > 0).
Only SCI is cut back out: the rac subarray keeps the raw DQ OR the BIAC DQ and the quadrature ERR.
"""

from __future__ import annotations

import numpy as np

from pipeline.core.errors import BadInput, Unsupported
from pipeline.science.calib.context import COMPLETE, CalContext, check_reference
from pipeline.science.calib.cte import bias, rnoise
from pipeline.science.calib.cte.invert import correct
from pipeline.science.calib.cte.pctetab import read_pctetab, with_header_overrides
from pipeline.science.calib.cte.raz import COLS, ROWS, make_raz, undo_raz
from pipeline.science.calib.imageio import Exposure, Imset, find_line, frame_of

CHIP_SHAPE = (ROWS, COLS // 2)
PRESCAN = 25        # physical prescan columns of a raw chip (P_OVRSCN)
VIRTUAL = 60        # serial virtual columns between the amps (V_OVRSCNX2)
AMP_END = 2072      # a subarray starting at or beyond this raw column lies in amp B or D


def check(ctx: CalContext) -> None:
    """calwf3's preconditions: no bias-level step done yet, full frame, the three references."""
    for switch in ("BIASCORR", "DARKCORR", "BLEVCORR"):
        if ctx.switches.get(switch) == COMPLETE:
            raise BadInput(f"{switch} = COMPLETE: the CTE correction needs a raw image", path=ctx.path,
                           keyword=switch)
    check_reference(ctx, "PCTETAB", filetype="PIXCTE", table=True)
    check_reference(ctx, "BIACFILE", filetype="CTEBIAS")
    ctx.reference_path("DRKCFILE")


def time_scaling(expstart: float, date0: float, date1: float, ncols: int) -> tuple[float, np.ndarray]:
    """calwf3's CTE_FF and per-row trap-density scaling (rows from the serial register), ``ncols`` wide;
    the simulator trails with the same numbers the correction undoes."""
    cte_ff = (expstart - date0) / (date1 - date0)
    rows = np.arange(1, ROWS + 1, dtype=np.float64)
    column = (cte_ff * rows / 2048.0).astype(np.float32).astype(np.float64)
    return cte_ff, np.repeat(column[:, None], ncols, axis=1)


def _biac_columns(x0: int, nx: int) -> np.ndarray:
    """BIACFILE columns under a subarray starting at raw column ``x0`` (``doCteBias``)."""
    cols = np.arange(x0, x0 + nx)
    if x0 >= AMP_END:
        return cols + VIRTUAL
    cols[max(AMP_END + 1 - x0, 0):] += VIRTUAL  # straddling: from ``overstart`` on
    return cols


def _subtract_biac(ctx: CalContext, imset: Imset, group: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SCI - BIAC SCI, sqrt(ERR^2 + BIAC ERR^2) and DQ | BIAC DQ for imset ``group`` of the BIACFILE,
    cut at the science array's corner when it is a subarray."""
    ref = ctx.ref_image("BIACFILE")
    if ref.n_imsets < group:
        raise ref.error(f"has no imset {group} (NEXTEND/3 = {ref.n_imsets})")
    ri = ref.imset(group)
    ny, nx = imset.sci.shape
    place = find_line(imset.sci_header, nx, ri.header, ri.nx)
    if imset.sci.shape == ri.shape:  # a full chip: the whole imset
        rows, cols = slice(0, ny), np.arange(nx)
    else:
        rows, cols = slice(place.y0, place.y0 + ny), _biac_columns(place.x0, nx)
    if imset.sci.shape != ri.shape and (place.rx != 1 or place.ry != 1 or place.y0 < 0 or place.y0 + ny > ri.ny
                                        or cols.min() < 0 or cols.max() >= ri.nx):
        raise BadInput(f"BIACFILE {ref.path.name} imset {group} ({ri.nx}x{ri.ny}) does not hold the science "
                       f"array ({nx}x{ny} at {place.x0},{place.y0})", path=ref.path, keyword="BIACFILE")
    sci, err, dq = (a[rows][:, cols] for a in (ri.sci(), ri.err(), ri.dq()))
    e = np.sqrt(imset.err * imset.err + err * err, dtype=np.float32)
    return (imset.sci - sci).astype(np.float32), e, imset.dq | dq


def _paste_corner(imset: Imset, chip: int, ctx: CalContext) -> tuple[int, int]:
    """Where ``Sub2Full`` puts a subarray in its raw chip (x past the virtual columns in amp B/D);
    calwf3's refusal of subarrays without physical prescan."""
    corner = frame_of(imset.sci_header).corner
    x0 = corner[0] + PRESCAN                            # the empty chip has LTV1 = 25
    y0 = corner[1] + (0 if chip == 2 else ROWS - 2051)  # and LTV2 = 0 (chip 2) or 19 (chip 1)
    ny, nx = imset.sci.shape
    if x0 >= PRESCAN and x0 + nx + VIRTUAL <= COLS // 2 - PRESCAN:
        raise Unsupported(f"PCTECORR: subarray not taken with physical overscan (columns {x0}..{x0 + nx}): "
                          "calwf3 cannot correct it", path=ctx.path, keyword="APERTURE")
    x0 += VIRTUAL if x0 >= AMP_END else 0
    if y0 < 0 or y0 + ny > ROWS or x0 + nx > COLS // 2:
        raise BadInput(f"subarray {nx}x{ny} at ({x0},{y0}) is not inside a UVIS chip", path=ctx.path, keyword="LTV1")
    return x0, y0


def _in_full_chips(chip: int, arrays: tuple[np.ndarray, ...], x0: int, y0: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(cd, ab) full chips, zero outside the subarray, for each array (the other chip empty)."""
    out = []
    for a in arrays:
        full = np.zeros(CHIP_SHAPE, dtype=a.dtype)
        full[y0:y0 + a.shape[0], x0:x0 + a.shape[1]] = a
        empty = np.zeros(CHIP_SHAPE, dtype=a.dtype)
        out.append((full, empty) if chip == 2 else (empty, full))
    return out


def run(ctx: CalContext, exposure: Exposure) -> Exposure:
    """The ``rac`` exposure (raw format) of a UVIS raw, full frame or subarray; keywords go to ``ctx``."""
    check(ctx)
    subarray = ctx.key("SUBARRAY", bool)
    if subarray:
        imset = exposure.imsets[0]
        chip = imset.chip
        x0, y0 = _paste_corner(imset, chip, ctx)
        biac = _subtract_biac(ctx, imset, 1 if chip == 2 else 2)
        (raw_cd, raw_ab), (cd_sci, ab_sci), (mask_cd, mask_ab) = _in_full_chips(
            chip, (imset.sci, biac[0], np.ones(imset.sci.shape, np.uint8)), x0, y0)
        mask: np.ndarray | None = make_raz(mask_cd, mask_ab) != 0
    else:
        if len(exposure.imsets) < 2 or any(im.sci.shape != CHIP_SHAPE for im in exposure.imsets[:2]):
            raise BadInput(f"PCTECORR needs two {CHIP_SHAPE[1]} x {CHIP_SHAPE[0]} raw chips", path=ctx.path,
                           keyword="NEXTEND")
        cd, ab = exposure.imsets[0], exposure.imsets[1]
        raw_cd, raw_ab = cd.sci, ab.sci
        cd_sci, cd_err, _ = _subtract_biac(ctx, cd, 1)
        ab_sci, ab_err, _ = _subtract_biac(ctx, ab, 2)
        mask = None
    path = ctx.reference_path("PCTETAB")
    assert path is not None
    table = with_header_overrides(read_pctetab(path), ctx.primary, ctx.path)
    raw_raz = make_raz(raw_cd, raw_ab)
    raz = make_raz(cd_sci, ab_sci)
    gain = np.float32(ctx.key("CCDGAIN", float))
    levels = bias.postscan_bias(raz) if mask is None else bias.prescan_bias(raz, mask)
    for k, level in enumerate(levels):
        amp = slice(k * (COLS // 4), (k + 1) * (COLS // 4))
        block = raz[:, amp]
        if mask is None:
            block -= np.float32(level)
            block *= gain
        else:
            m = mask[:, amp]
            block[m] = (block[m] - np.float32(level)) * gain
    cte_ff, fff = time_scaling(ctx.key("EXPSTART", float), table.date0, table.date1, COLS)
    rnoi = float(np.float32(ctx.key("PCTERNOI", float, 0.0)))
    if rnoi == 0.0:
        rnoi = rnoise.estimate(raz)
    ctx.log(f"CTE: {table.name} {table.version}, PCTEFRAC {cte_ff:.10g}, PCTERNOI {rnoi:.8g}, "
            f"NITFOR {table.nfor}, NITPAR {table.npar}; residual bias C,D,A,B "
            + ", ".join(f"{b:.4f}" for b in levels))
    rzc = correct(raz, fff, table, rnoi)
    delta = (rzc - raz) / gain
    new_cd, new_ab = undo_raz(raw_raz + delta)
    out = Exposure(path=exposure.path, primary=exposure.primary.copy())
    if subarray:
        full = new_cd if chip == 2 else new_ab
        ny, nx = imset.sci.shape
        out.imsets.append(Imset(imset.extver, full[y0:y0 + ny, x0:x0 + nx].astype(np.float32), biac[1], biac[2],
                                imset.sci_header.copy(), imset.err_header.copy(), imset.dq_header.copy()))
    else:
        for im, sci, err in ((cd, new_cd, cd_err), (ab, new_ab, ab_err)):
            out.imsets.append(Imset(im.extver, sci.astype(np.float32), err, np.zeros(sci.shape, np.uint16),
                                    im.sci_header.copy(), im.err_header.copy(), im.dq_header.copy()))
    ctx.primary_updates.update(table.keywords())
    # calwf3 writes PCTEFRAC with 13 significant digits
    ctx.primary_updates.update(PCTEFRAC=float(f"{cte_ff:.13g}"), PCTERNOI=rnoi)
    ctx.done("PCTECORR")
    return out
