"""CA: calibrate one exposure (one DAG node per member), and finish an association's combined product.

Where CRCORR runs (see docs/calib.md): ``owl-ca <member>`` runs the basic CCD reduction and keeps
``<member>_blv_tmp.fits`` in the association's work area; for an ordinary exposure it goes on to
write ``<member>_flt.fits``. When the member belongs to a CR-SPLIT/REPEAT association with CRCORR
(or RPTCORR) = PERFORM, its flt is deferred: ``owl-ca <association>``, run after all member nodes,
rejects cosmic rays over the members' ``_blv_tmp`` files into ``<product>_crj.fits``, ORs the CR
masks into the members, and writes every member's ``_flt`` — exactly calwf3's order (WF3CCD,
WF3REJ, WF32D). COS associations are calibrated by calcos at the association node. With the hstcal
engine the association node runs calwf3.e/calacs.e on the ``_asn`` table.
"""

from __future__ import annotations

import os
from pathlib import Path

from astropy.io import fits

from pipeline.asntable import read_asn_table
from pipeline.calib import builtin
from pipeline.calib.api import choose_engine, log_sink
from pipeline.calib.cos import run_calcos
from pipeline.calib.hstcal import run_hstcal
from pipeline.calib.imageio import read_exposure
from pipeline.errors import BadInput
from pipeline.names import DatasetName, parse_dataset
from pipeline.stage import Stage, StageContext, stage_main

CR_SWITCHES = ("CRCORR", "RPTCORR")


def _raw(work: Path, name: DatasetName) -> Path:
    for suffix in ("raw", "rawtag_a", "rawtag", "rawtag_b", "rawacq", "rawaccum"):
        path = work / name.file(suffix)
        if path.is_file():
            return path
    raise BadInput(f"no raw file for {name} in {work}: has 2FITS run?")


def _header(path: Path) -> fits.Header:
    return fits.getheader(path, 0)


def _cr_stack(header: fits.Header, n_members: int) -> bool:
    return n_members >= 2 and any(str(header.get(s, "")).strip().upper() == "PERFORM" for s in CR_SWITCHES)


class Calibrate(Stage):
    name = "ca"
    column = "CA"
    scope = "exposure"
    summary = "calibrate an exposure (built-in engine, hstcal or calcos); an association node combines CR-SPLITs"

    def run(self, ctx: StageContext) -> None:
        if ctx.dataset.is_association:
            self._association(ctx)
        else:
            self._exposure(ctx)

    # ---------------------------------------------------------------------------------- exposure
    def _exposure(self, ctx: StageContext) -> None:
        entry = ctx.osf.find(ctx.dataset)
        parent = parse_dataset(entry.parent) if entry is not None and entry.parent else None
        work = ctx.site.work_dir(parent) if parent is not None else ctx.work
        siblings = ctx.osf.members(parent.name) if parent is not None else []
        raw = _raw(work, ctx.dataset)
        header = _header(raw)
        instrument = str(header.get("INSTRUME", "")).strip().upper()
        log = log_sink(ctx.trailer)
        if instrument == "COS":
            if parent is not None:
                ctx.log(f"{ctx.dataset}: COS member; calcos runs on association {parent}")
                return
            products = run_calcos(raw, work, site=ctx.site, log=log)
            ctx.log(f"{ctx.dataset}: calcos wrote {', '.join(p.name for p in products)}")
            return
        engine = choose_engine(ctx.site.calibration.engine, instrument, dict(os.environ))
        deferred = parent is not None and _cr_stack(header, len(siblings))
        ctx.log(f"{ctx.dataset}: calibration engine {engine}")
        if engine == "hstcal":
            if deferred:
                ctx.log(f"{ctx.dataset}: CR-SPLIT member; calibrated with its association {parent}")
                return
            products = run_hstcal(instrument, raw, [], work, site=ctx.site, log=log)
            ctx.log(f"{ctx.dataset}: wrote {', '.join(p.name for p in products)}")
            return
        blv = builtin.ccd_phase(raw, site=ctx.site, log=log)
        builtin.save_intermediate(blv, work / ctx.dataset.file("blv_tmp"))
        if deferred:
            ctx.log(f"{ctx.dataset}: {ctx.dataset.file('blv_tmp')} kept; flt follows CR rejection at {parent}")
            return
        out = builtin.twod_phase(blv, work / ctx.dataset.file("flt"), site=ctx.site, log=log)
        (work / ctx.dataset.file("blv_tmp")).unlink()
        ctx.log(f"{ctx.dataset}: wrote {out.name}")

    # ------------------------------------------------------------------------------- association
    def _association(self, ctx: StageContext) -> None:
        work = ctx.work
        asn_path = work / ctx.dataset.file("asn")
        if not asn_path.is_file():
            ctx.log(f"{ctx.dataset}: no association table; nothing to combine")
            return
        instrument = str(_header(asn_path).get("INSTRUME", "")).strip().upper()
        log = log_sink(ctx.trailer)
        if instrument == "COS":
            products = run_calcos(asn_path, work, site=ctx.site, log=log)
            ctx.log(f"{ctx.dataset}: calcos wrote {len(products)} products")
            return
        asn = read_asn_table(asn_path)
        members = [parse_dataset(m) for m in asn.members if asn.present.get(m, True)]
        first = _header(_raw(work, members[0]))
        if not (asn.asn_type in ("CR-SPLIT", "REPEAT") and _cr_stack(first, len(members)) and asn.products):
            ctx.log(f"{ctx.dataset}: {asn.asn_type} association; members were calibrated individually")
            return
        product = asn.products[0]
        engine = choose_engine(ctx.site.calibration.engine, instrument, dict(os.environ))
        if engine == "hstcal":
            raws = [_raw(work, m) for m in members]
            products = run_hstcal(instrument, asn_path, raws, work, site=ctx.site, log=log)
            ctx.log(f"{ctx.dataset}: wrote {', '.join(p.name for p in products)}")
            return
        blv_paths = [work / m.file("blv_tmp") for m in members]
        missing = [p.name for p in blv_paths if not p.is_file()]
        if missing:
            raise BadInput(f"{ctx.dataset}: member intermediates missing ({', '.join(missing)}); "
                           "run owl-ca on every member first")
        blvs = [read_exposure(p) for p in blv_paths]
        outputs = builtin.finish_stack(blvs, work, product, site=ctx.site, log=log)
        for p in blv_paths:
            p.unlink()
        ctx.log(f"{ctx.dataset}: wrote {', '.join(p.name for p in outputs)}")


main = stage_main(Calibrate)
