"""ACS/WFC with the built-in engine: calacs's ACSCCD and ACS2D flows (calacs 10.5, §8 of the notes).

ACSCCD, all imsets together: CCDTAB/OSCNTAB, DQICORR (A-to-D at ATODSAT from CCDTAB, BPIXTAB without
the WFC3 shift), BIASCORR **before** BLEVCORR, conversion to electrons, BLEVCORR (pre-SM4 and
unsupported subarrays: the doBlev fit; post-SM4 full frame: bias shift + cross talk for DS_INT at
gain 2, then destriping), DARKTIME with the CCDTAB overhead, the SATUFILE flags (in electrons, no
scalar fallback), ERR init ``sqrt(max(SCI,0) + RN^2 + ERR^2)``, SINKCORR, trim.
ACS2D: DQICORR, DARKCORR (``DARK * DARKTIME``), FLSHCORR, FLATCORR (no gain: already e-), SHADCORR,
PHOTCORR, statistics.
"""

from __future__ import annotations

import numpy as np
from astropy.io import fits

from pipeline.core.errors import BadInput, MissingReference, Unsupported
from pipeline.science.calib import scratch
from pipeline.science.calib.chip import Chip
from pipeline.science.calib.context import COMPLETE, SKIPPED, CalContext, check_reference, reference_is_dummy
from pipeline.science.calib.geometry import Overscan
from pipeline.science.calib.hrc import HrcChip
from pipeline.science.calib.imageio import Exposure, Imset, find_line
from pipeline.science.calib.numerics import BLOCK_ROWS, row_blocks
from pipeline.science.calib.perchip import map_chips
from pipeline.science.calib.steps import destripe
from pipeline.science.calib.steps.blev import ACS as BLEV_ACS
from pipeline.science.calib.steps.blev import BlevCorr
from pipeline.science.calib.steps.dqi import TRAP, DqiCorr, FullWellSat
from pipeline.science.calib.steps.flat import FLATS, FlatCorr, ShadCorr
from pipeline.science.calib.steps.phot import PhotCorr
from pipeline.science.calib.steps.stats import finish_imset
from pipeline.science.calib.steps.subtract import BiasCorr, DarkCorr, FlshCorrAcs
from pipeline.science.calib.steps.trim import trim_overscan
from pipeline.science.calib.tables import ACS_OSCNTAB_COLUMNS, pedigree_is_dummy, read_ccdtab, read_oscntab

SWITCHES = ("DQICORR", "ATODCORR", "BLEVCORR", "BIASCORR", "SINKCORR", "FLSHCORR", "CRCORR", "RPTCORR",
            "DARKCORR", "FLATCORR", "SHADCORR", "PHOTCORR", "PCTECORR", "EXPSCORR", "DRIZCORR")
CCD_SWITCHES = ("DQICORR", "ATODCORR", "BLEVCORR", "BIASCORR", "SINKCORR")
TWOD_SWITCHES = ("DQICORR", "DARKCORR", "FLSHCORR", "FLATCORR", "SHADCORR", "PHOTCORR")
SM4MJD = 54962.0
CYCLE24 = 57662.0
#: Subarrays whose bias shift can be corrected (physical and virtual overscan), and those whose
#: DARKTIME gets the CCDTAB overhead after Cycle 24 (``wfcsubapertures.h``).
BIAS_SHIFT_APERTURES = frozenset({
    "WFC1A-2K", "WFC1B-2K", "WFC2C-2K", "WFC2D-2K", "WFC1-IRAMPQ", "WFC1-MRAMPQ", "WFC2-MRAMPQ",
    "WFC2-ORAMPQ", "WFC1-POL0UV", "WFC1-POL0V", "WFC2-POL0UV", "WFC2-POL0V", "WFC1-POL60UV",
    "WFC1-POL60V", "WFC2-POL60UV", "WFC2-POL60V", "WFC1-POL120UV", "WFC1-POL120V", "WFC2-POL120UV",
    "WFC2-POL120V"})
DARK_APERTURES = frozenset({
    "WFC1A-2K", "WFC1B-2K", "WFC2C-2K", "WFC2D-2K", "WFC1A-1K", "WFC1B-1K", "WFC2C-1K", "WFC2D-1K",
    "WFC1A-512", "WFC1B-512", "WFC2C-512", "WFC2D-512", "WFC1-IRAMPQ", "WFC1-MRAMPQ", "WFC2-ORAMPQ",
    "WFC1-POL0UV", "WFC1-POL0V", "WFC1-POL60UV", "WFC1-POL60V", "WFC1-POL120UV", "WFC1-POL120V",
    "WFC1-SMFL"})


class AcsFlags:
    """ACS needs no exposure-level decision beyond the switches."""


def corrects_cte(ctx: CalContext) -> bool:
    """The built-in ACSCTE (:mod:`.cte.acs`) handles WFC full frames and subarrays (calacs 10.5.0
    corrects any WFC subarray whose PCTECORR is PERFORM); the CTE branch makes the _flc."""
    return ctx.detector == "WFC"


def validate(ctx: CalContext) -> AcsFlags:
    ctx.read_switches(SWITCHES)
    ctx.refuse_both_cr_switches()
    for kw, kind in (("ROOTNAME", str), ("EXPTIME", float), ("EXPSTART", float), ("EXPEND", float),
                     ("SUBARRAY", bool), ("CCDAMP", str)):
        ctx.key(kw, kind)
    if ctx.perform("ATODCORR"):
        raise Unsupported("ATODCORR = PERFORM is not implemented by the built-in engine", path=ctx.path,
                          keyword="ATODCORR")
    if ctx.perform("PCTECORR") and not corrects_cte(ctx):
        ctx.warn("PCTECORR = PERFORM: the built-in engine corrects CTE for ACS/WFC only; "
                 "no _flc is produced")
        ctx.done("PCTECORR", SKIPPED)
    path = ctx.reference_path("CCDTAB")
    assert path is not None
    check_reference(ctx, "CCDTAB", filetype="CCD PARAMETERS", table=True)
    if pedigree_is_dummy(fits.getheader(path, 0)):
        raise MissingReference(f"CCDTAB {path.name} is a dummy table", keyword="CCDTAB", path=path)
    if ctx.perform("DQICORR") and ctx.has_value("BPIXTAB"):
        check_reference(ctx, "BPIXTAB", filetype="BAD PIXELS", table=True)
    if ctx.perform("BLEVCORR"):
        check_reference(ctx, "OSCNTAB", filetype="OVERSCAN", table=True)
    for switch, keyword, filetype in (("BIASCORR", "BIASFILE", "BIAS"), ("DARKCORR", "DARKFILE", "DARK"),
                                      ("FLSHCORR", "FLSHFILE", "POST FLASH"), ("SHADCORR", "SHADFILE", None),
                                      ("SINKCORR", "SNKCFILE", None)):
        if ctx.perform(switch):
            ctx.reference_path(keyword)
            if reference_is_dummy(ctx, keyword):
                ctx.warn(f"{keyword} has PEDIGREE = DUMMY; {switch} skipped")
                ctx.done(switch, SKIPPED)
            elif filetype:
                check_reference(ctx, keyword, filetype=filetype)
    if ctx.perform("BIASCORR"):
        ctx.reference_path("SATUFILE")  # mandatory for ACS
    if ctx.perform("FLATCORR"):
        named = [kw for kw in FLATS if ctx.has_value(kw)]
        if not named:
            raise MissingReference("FLATCORR = PERFORM but no flat field is named", keyword="PFLTFILE")
        for kw in named:
            check_reference(ctx, kw, filetype=None, filters=("FILTER1", "FILTER2"))
    if ctx.perform("PHOTCORR"):
        ctx.reference_path("IMPHTTAB")
    return AcsFlags()


def make_chip(ctx: CalContext, imset: Imset, *, raw: bool) -> Chip:
    hdr = imset.sci_header
    binaxis = (int(hdr.get("BINAXIS1", ctx.primary.get("BINAXIS1", 1))),
               int(hdr.get("BINAXIS2", ctx.primary.get("BINAXIS2", 1))))
    ny, nx = imset.sci.shape
    ccdamp = ctx.key("CCDAMP", str)
    ccdtab = ctx.reference_path("CCDTAB")
    assert ccdtab is not None
    ccd = read_ccdtab(ccdtab, ccdamp=ccdamp, chip=imset.chip, ccdgain=ctx.key("CCDGAIN", float, 1.0),
                      binaxis=binaxis, ccdofst=[ctx.key(f"CCDOFST{a}", int, 3) for a in "ABCD"], dimx=nx)
    oscn = Overscan.none()
    if raw and ctx.has_value("OSCNTAB"):
        path = ctx.reference_path("OSCNTAB")
        assert path is not None
        row = read_oscntab(path, ccdamp=ccdamp, chip=imset.chip, binaxis=binaxis,
                           columns=ACS_OSCNTAB_COLUMNS, size=(nx, ny))
        if row is None and ctx.perform("BLEVCORR"):
            # calacs only warns, then its ACS2D stops on the untrimmed image; say why here instead
            raise MissingReference(f"OSCNTAB {path.name}: no row for CCDAMP {ccdamp}, CCDCHIP {imset.chip}, "
                                   f"NX {nx}, NY {ny}: the overscan of this readout is unknown", keyword="OSCNTAB",
                                   path=path)
        if row is not None:
            oscn = Overscan(trimx=[row.trimx[0], row.trimx[1], 0, 0], trimy=list(row.trimy),
                            vx=[row.vx[0] - 1, row.vx[1] - 1, 0, 0], vy=[row.vy[0] - 1, row.vy[1] - 1, 0, 0],
                            biassect={a: (s[0] - 1, s[1] - 1) if a in "AB" else (0, 0)
                                      for a, s in row.biassect.items()},
                            overscan=True, row=row.row)
    cls = HrcChip if ctx.detector == "HRC" else Chip
    return cls(imset=imset, ccd=ccd, oscn=oscn, ampx=ccd.ampx, ampy=ccd.ampy, subarray=ctx.key("SUBARRAY", bool),
                sdqflags=int(hdr.get("SDQFLAGS", 65535)) & 0xFFFF, ncombine=max(int(hdr.get("NCOMBINE", 1)), 1))


def amp_boundary(chip: Chip) -> int:
    """Raw column where the right amp starts: AMPX + max(LTV1, 0), or the whole row past the end."""
    nx = chip.sci.shape[1]
    ltv1 = chip.ltv[0]
    offsetx = int(ltv1) if ltv1 > 0 else 0
    ampx = 0 if chip.ampx == 0 else chip.ampx + offsetx
    if ampx >= nx - ltv1 or ampx > nx:
        ampx = nx
    return ampx


def to_electrons(chip: Chip) -> None:
    """``to_electrons``: SCI and ERR times the amp's gain (left/right of the amp boundary)."""
    ampx = amp_boundary(chip)
    gains = chip.gains()
    for slot, cols in ((0, slice(0, ampx)), (1, slice(ampx, None))):
        if cols.start is not None and cols.start >= chip.sci.shape[1]:
            continue
        g = np.float32(gains[slot])
        if g == 0 and chip.sci[:, cols].size:
            raise MissingReference(f"CCDTAB row {chip.ccd.row}: no gain for an amp of chip {chip.number}",
                                   keyword="CCDTAB")
        chip.sci[:, cols] *= g
        chip.err[:, cols] *= g


def init_noise(ctx: CalContext, chip: Chip) -> None:
    """ACS ERR: ``sqrt(max(SCI,0) + RN^2 + ERR^2)`` in e- (ERR then holds the bias error);
    ``RN`` alone for TARGNAME = BIAS*."""
    ampx = amp_boundary(chip)
    rns = chip.readnoises()
    bias_target = str(ctx.primary.get("TARGNAME", "")).strip().startswith("BIAS")
    for slot, cols in ((0, slice(0, ampx)), (1, slice(ampx, None))):
        rn = np.float32(rns[slot])
        if chip.sci[:, cols].size == 0:
            continue
        if rn == 0:
            raise MissingReference(f"CCDTAB row {chip.ccd.row}: no read noise for an amp of chip {chip.number}",
                                   keyword="CCDTAB")
        if bias_target:
            chip.err[:, cols] = rn
            continue
        sci, err = chip.sci[:, cols], chip.err[:, cols]
        # a block of rows at a time in two reused buffers: no half-chip temporaries (fresh memory)
        value = np.empty((min(BLOCK_ROWS, sci.shape[0]), sci.shape[1]), np.float32)
        square = np.empty_like(value)
        for rows in row_blocks(sci.shape[0]):
            v, e = value[:rows.stop - rows.start], err[rows]
            np.maximum(sci[rows], np.float32(0), out=v)
            v += rn * rn
            v += np.multiply(e, e, out=square[:v.shape[0]])
            np.sqrt(v, out=e)


def sink_detect(ctx: CalContext, chip: Chip) -> None:
    """ACS SINKCORR: walk each column from the sink head along its tail (up for SCI,1, down for
    SCI,2): values < 0 flag (< -1 is the sink itself, whose SCI is remembered); > 0 continue the tail
    while the map value exceeds that SCI."""
    sink = ctx.ref_image("SNKCFILE")
    ref_set = sink.for_chip(chip.number, planes=("SCI",))  # dosink.c reads SCI only (getFloatHD)
    place = find_line(chip.imset.sci_header, chip.sci.shape[1], ref_set.header, ref_set.nx)
    if place.rx != 1 or place.ry != 1:
        raise Unsupported("SINKCORR: binned data are not supported", path=ctx.path, keyword="SINKCORR")
    ny, nx = chip.sci.shape
    ref = ref_set.sci()[place.y0:place.y0 + ny, place.x0:place.x0 + nx]
    order = range(ny) if ref_set.extver == 1 else range(ny - 1, -1, -1)
    keep = np.zeros(nx, bool)
    level = np.zeros(nx, np.float32)
    flagged = 0
    for j in order:
        r = ref[j]
        neg = r < 0
        keep |= neg
        sink_head = r < -1
        level[sink_head] = chip.sci[j][sink_head]
        tail = (r > 0) & keep
        up = tail & (r > level)
        keep &= ~(tail & ~up) & ~((r == 0) & keep)
        hit = neg | up
        chip.dq[j][hit] |= np.uint16(TRAP)
        flagged += int(hit.sum())
    ctx.log(f"chip {chip.number}: {flagged} sink pixels flagged")


def darktime(ctx: CalContext, chip: Chip) -> float:
    """DARKTIME plus the CCDTAB overhead (flashed or unflashed) for post-SM4 full frames and, after
    Cycle 24, the supported subarrays."""
    base = np.float32(ctx.key("DARKTIME", float, 0.0))
    flashed = ctx.key("FLASHDUR", float, 0.0) > 0 and ctx.key("FLASHSTA", str, "") == "SUCCESSFUL"
    offset = np.float32((chip.ccd.ovrhfls if flashed else chip.ccd.ovrhufls) or 0.0)
    expstart = ctx.key("EXPSTART", float)
    if not chip.subarray:
        return float(base + offset) if expstart >= SM4MJD else float(base)
    if expstart >= CYCLE24 and ctx.key("APERTURE", str, "") in DARK_APERTURES:
        return float(base + offset)
    return float(base)


def _blev(ctx: CalContext, chips: list[Chip]) -> bool:
    """BLEVCORR in calacs's branches; returns whether the image may be trimmed."""
    first = chips[0]
    post_sm4 = ctx.key("EXPSTART", float) >= SM4MJD
    ds_int_gain2 = (ctx.key("JWROTYPE", str, "").upper() == "DS_INT"
                    and ctx.key("CCDGAIN", float, 1.0) == 2.0)
    if not post_sm4 or ctx.detector == "HRC":  # "All HRC data - use the original bias level subtraction"
        for c in chips:
            BlevCorr(BLEV_ACS).run(ctx, c)
        return True
    if not first.subarray:
        if not all(c.oscn.overscan for c in chips) or len(chips) != 2:
            ctx.warn("overscan missing: no destriping or bias level subtraction for the full frame")
            return False
        chip2, chip1 = (chips[0], chips[1]) if chips[0].number == 2 else (chips[1], chips[0])
        amps = [destripe.amp_view(chip1.sci, 0), destripe.amp_view(chip1.sci, 1),
                destripe.amp_view(chip2.sci, 2), destripe.amp_view(chip2.sci, 3)]
        if ds_int_gain2:  # amps, then chips, in threads
            def shift(k: int) -> float:   # the double amp arrays are reused, then by ACS2D (scratch)
                with scratch.borrowed(amps[k].shape, np.float64) as work:
                    return destripe.bias_shift_in_place(amps[k], k, work)

            magics = map_chips(ctx, shift, range(4))
            for k, magic in enumerate(magics):
                ctx.log(f"bias shift: amp {'ABCD'[k]} magic square {magic:.4f} e-")
            map_chips(ctx, lambda c: destripe.cross_talk(c.sci), chips)
        else:
            magics = [0.0] * 4
            ctx.log("readout type/gain not DS_INT at gain 2: no bias shift or cross-talk correction")
        levels = map_chips(ctx, destripe.amp_levels, amps)
        means = [a.level for a in levels]
        chip1.sci_keywords["MEANBLEV"] = float(np.float32((means[0] + means[1]) / 2.0))
        chip2.sci_keywords["MEANBLEV"] = float(np.float32((means[2] + means[3]) / 2.0))
        for k, a in enumerate("ABCD"):  # BIASLEVx: the total removed, magic square then bias mean (acs->blev +=)
            (chip1 if k < 2 else chip2).blev[a] = magics[k] + means[k]
        fixed, skipped = destripe.remove_stripes(levels, lambda fn, parts: map_chips(ctx, fn, parts))
        ctx.log(f"DESTRIPE: rows fixed per amp {fixed}, skipped {skipped}; bias levels "
                f"{', '.join(f'{a} {m:.6g}' for a, m in zip('ABCD', means, strict=True))} e-")
        return True
    aperture = ctx.key("APERTURE", str, "").upper()
    virtual = first.oscn.vy[1] > first.oscn.vy[0]
    if aperture in BIAS_SHIFT_APERTURES and virtual and ds_int_gain2:
        letter = ctx.key("CCDAMP", str).upper()
        k = "ABCD".index(letter)
        magic = destripe.bias_shift_in_place(destripe.amp_view(first.sci, k, full_frame=False), k)
        first.blev[letter] = magic
        ctx.log(f"bias shift for subarray {aperture}: amp {letter} magic square {magic:.4f} e-")
        return True
    for c in chips:
        BlevCorr(BLEV_ACS).run(ctx, c)
    return True


def _dqicorr(ctx: CalContext, chip: Chip) -> None:
    """ACS DQICORR (ACSCCD and ACS2D alike): A-to-D saturation at or above the CCDTAB's ATODSAT, BPIXTAB."""
    DqiCorr(raw=False, scalar_saturation=False, atod_limit=float(chip.ccd.atodsat or 65535),
            atod_inclusive=True, shift_abcd=False).run(ctx, chip)


def ccd(ctx: CalContext, exposure: Exposure, flags: AcsFlags) -> Exposure:
    """ACSCCD on all imsets; returns the (trimmed) exposure in electrons."""
    chips = [make_chip(ctx, im, raw=True) for im in exposure.imsets]
    err_was_zero = [not np.any(c.err) for c in chips]
    first = chips[0]
    for n, a in enumerate("ABCD"):
        ctx.primary_updates[f"ATODGN{a}"] = float(np.float32(first.ccd.atodgain[n]))
        ctx.primary_updates[f"READNSE{a}"] = float(np.float32(first.ccd.readnoise[n]))
    if ctx.perform("DQICORR"):
        map_chips(ctx, lambda c: _dqicorr(ctx, c), chips)
    if ctx.perform("BIASCORR"):
        map_chips(ctx, lambda c: BiasCorr(virtual_columns=0).run(ctx, c), chips)
    map_chips(ctx, to_electrons, chips)
    for c in chips:
        c.sci_keywords["BUNIT"] = "ELECTRONS"
        c.err_keywords["BUNIT"] = "ELECTRONS"
    trimmed = False
    if ctx.perform("BLEVCORR"):
        trimmed = _blev(ctx, chips)
        if not trimmed:
            ctx.done("BLEVCORR", SKIPPED)
    ctx.primary_updates["DARKTIME"] = darktime(ctx, first)
    if ctx.perform("BIASCORR") and ctx.perform("BLEVCORR"):
        map_chips(ctx, lambda c: FullWellSat(gain_divide=False, sv_overscan=0, end_ac=1 << 30,
                                             reset_amps=False).run(ctx, c), chips)
    map_chips(ctx, lambda c: init_noise(ctx, c), [c for c, zero in zip(chips, err_was_zero, strict=True) if zero])
    if ctx.perform("SINKCORR"):
        map_chips(ctx, lambda c: sink_detect(ctx, c), chips)
    out = Exposure(path=exposure.path, primary=exposure.primary)
    for c in chips:
        for amp, level in c.blev.items():  # BiasKeywords: existing keywords, non-zero levels only
            if f"BIASLEV{amp}" in ctx.primary and level != 0.0:
                ctx.primary_updates[f"BIASLEV{amp}"] = float(np.float32(level))
        c.imset.sci_header.update(c.sci_keywords)
        c.imset.err_header.update(c.err_keywords)
    out.imsets.extend(map_chips(ctx, lambda c: trim_overscan(c, serial_virtual=False), chips) if trimmed
                      else [c.imset for c in chips])
    for switch in CCD_SWITCHES:
        ctx.done(switch)
    return out


def twod(ctx: CalContext, exposure: Exposure, flags: AcsFlags) -> list[Chip]:
    """ACS2D on the trimmed exposure (electrons)."""
    if ctx.switches.get("BLEVCORR") != COMPLETE and any(ctx.perform(s) for s in TWOD_SWITCHES[1:]):
        raise BadInput("overscan region not trimmed: ACS2D needs BLEVCORR = COMPLETE", path=ctx.path,
                       keyword="BLEVCORR")
    phot = PhotCorr(uvis=False, camera="HRC" if ctx.detector == "HRC" else "WFC1")

    def one(imset: Imset) -> Chip:
        chip = make_chip(ctx, imset, raw=False)
        if ctx.perform("DQICORR"):
            _dqicorr(ctx, chip)
        if not np.any(chip.err):
            init_noise(ctx, chip)
        for step in (DarkCorr(electrons=True), FlshCorrAcs(), FlatCorr(to_electrons=False), ShadCorr(), phot):
            if step.enabled(ctx):
                step.run(ctx, chip)
        if not ctx.perform("PHOTCORR"):
            chip.sci_keywords["PHOTMODE"] = phot.photmode(ctx, chip)
        return finish_imset(chip)

    chips = map_chips(ctx, one, exposure.imsets)
    for switch in (*TWOD_SWITCHES, "EXPSCORR"):
        ctx.done(switch)
    return chips
