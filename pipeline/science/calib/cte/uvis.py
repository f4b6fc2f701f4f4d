"""WF3CTE: the CTE branch of calwf3, raw -> ``rac`` (raw format, SCI in DN, CTE removed).

Runs first, on the raw file, before any bias-level step: BIACFILE subtraction, RAZ layout,
residual bias per amp, electrons, PCTERNOI, the inversion, then back to DN added to the untouched
raw values. The ``rac`` exposure then goes through WF3CCD/WF32D (with DRKCFILE) into ``_flc``.
Side effects reproduced from calwf3: the rac DQ is all zero and its ERR is the raw ERR combined
in quadrature with the BIACFILE ERR.
"""

from __future__ import annotations

import numpy as np

from pipeline.core.errors import BadInput, Unsupported
from pipeline.science.calib.context import COMPLETE, CalContext, check_reference
from pipeline.science.calib.cte import bias, rnoise
from pipeline.science.calib.cte.invert import correct
from pipeline.science.calib.cte.pctetab import read_pctetab, with_header_overrides
from pipeline.science.calib.cte.raz import COLS, ROWS, make_raz, undo_raz
from pipeline.science.calib.imageio import Exposure, Imset

CHIP_SHAPE = (ROWS, COLS // 2)


def check(ctx: CalContext) -> None:
    """calwf3's preconditions: no bias-level step done yet, full frame, the three references."""
    for switch in ("BIASCORR", "DARKCORR", "BLEVCORR"):
        if ctx.switches.get(switch) == COMPLETE:
            raise BadInput(f"{switch} = COMPLETE: the CTE correction needs a raw image", path=ctx.path,
                           keyword=switch)
    if ctx.key("SUBARRAY", bool):
        raise Unsupported("PCTECORR = PERFORM on a subarray: the built-in engine corrects full frames only "
                          "(use the hstcal engine)", path=ctx.path, keyword="SUBARRAY")
    check_reference(ctx, "PCTETAB", filetype="PIXCTE", table=True)
    check_reference(ctx, "BIACFILE", filetype="CTEBIAS")
    ctx.reference_path("DRKCFILE")


def _time_scaling(expstart: float, date0: float, date1: float, ncols: int) -> tuple[float, np.ndarray]:
    cte_ff = (expstart - date0) / (date1 - date0)
    rows = np.arange(1, ROWS + 1, dtype=np.float64)
    column = (cte_ff * rows / 2048.0).astype(np.float32).astype(np.float64)
    return cte_ff, np.repeat(column[:, None], ncols, axis=1)


def _subtract_biac(ctx: CalContext, imset: Imset, group: int) -> tuple[np.ndarray, np.ndarray]:
    """SCI - BIAC SCI and sqrt(ERR^2 + BIAC ERR^2) for imset ``group`` of the BIACFILE."""
    ref = ctx.ref_image("BIACFILE")
    if ref.n_imsets < group:
        raise ref.error(f"has no imset {group} (NEXTEND/3 = {ref.n_imsets})")
    ri = ref.imset(group)
    sci, err = ri.sci(), ri.err()
    if sci.shape != imset.sci.shape:
        raise BadInput(f"BIACFILE {ref.path.name} imset {group} is {sci.shape}, the data {imset.sci.shape}",
                       path=ref.path, keyword="BIACFILE")
    e = np.sqrt(imset.err * imset.err + err * err, dtype=np.float32)
    return (imset.sci - sci).astype(np.float32), e


def run(ctx: CalContext, exposure: Exposure) -> Exposure:
    """The ``rac`` exposure (raw format) of a full-frame UVIS raw; keywords go to ``ctx``."""
    check(ctx)
    if len(exposure.imsets) < 2 or any(im.sci.shape != CHIP_SHAPE for im in exposure.imsets[:2]):
        raise BadInput(f"PCTECORR needs two {CHIP_SHAPE[1]} x {CHIP_SHAPE[0]} raw chips", path=ctx.path,
                       keyword="NEXTEND")
    path = ctx.reference_path("PCTETAB")
    assert path is not None
    table = with_header_overrides(read_pctetab(path), ctx.primary, ctx.path)
    cd, ab = exposure.imsets[0], exposure.imsets[1]
    raw_raz = make_raz(cd.sci, ab.sci)
    cd_sci, cd_err = _subtract_biac(ctx, cd, 1)
    ab_sci, ab_err = _subtract_biac(ctx, ab, 2)
    raz = make_raz(cd_sci, ab_sci)
    gain = np.float32(ctx.key("CCDGAIN", float))
    levels = bias.postscan_bias(raz)
    for k, level in enumerate(levels):
        block = raz[:, k * (COLS // 4):(k + 1) * (COLS // 4)]
        block -= np.float32(level)
        block *= gain
    cte_ff, fff = _time_scaling(ctx.key("EXPSTART", float), table.date0, table.date1, COLS)
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
    for imset, sci, err in ((cd, new_cd, cd_err), (ab, new_ab, ab_err)):
        out.imsets.append(Imset(imset.extver, sci.astype(np.float32), err, np.zeros(sci.shape, np.uint16),
                                imset.sci_header.copy(), imset.err_header.copy(), imset.dq_header.copy()))
    ctx.primary_updates.update(table.keywords())
    # calwf3 writes PCTEFRAC with 13 significant digits
    ctx.primary_updates.update(PCTEFRAC=float(f"{cte_ff:.13g}"), PCTERNOI=rnoi)
    ctx.done("PCTECORR")
    return out
