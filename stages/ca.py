"""CA: calibrate one exposure per DAG node; the last member of a CR-SPLIT finishes the association.

Where CRCORR runs (see docs/calib.md). The OSF row of an association aggregates its members' CA
letters, so there is no separate association node: the members do the association's work.

* ``owl-ca <member>`` runs the basic CCD reduction and writes ``<member>_blv_tmp.fits`` in the
  association's work area. An ordinary exposure goes on to its ``_flt``.
* A member of a CR-SPLIT/REPEAT association with CRCORR (or RPTCORR) = PERFORM stops there. Under
  an exclusive lock on the association's work area it then looks at its siblings: the member that
  finds every sibling's ``_blv_tmp`` present (and newer than the ``_crj``) rejects cosmic rays into
  ``<product>_crj.fits``, ORs the CR masks into the members and writes every member's ``_flt`` —
  calwf3's order (WF3CCD, WF3REJ, WF32D). Re-running any member redoes the combination, so a
  retry converges. The intermediates stay until CL cleans the work area.
* COS members mark themselves ready; the last one runs calcos on the association. With the hstcal
  engine the last CR-SPLIT member runs calwf3.e/calacs.e on the ``_asn`` table.

``owl-ca <association>`` (with ``--force`` once the members are done) redoes the association's work.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from pipeline.core.errors import BadInput
from pipeline.core.fsutil import file_lock
from pipeline.core.names import DatasetName, parse_dataset
from pipeline.core.procexit import skip_exit_collection
from pipeline.core.stage import Stage, StageContext, stage_main
from pipeline.core.trailer import Trailer

if TYPE_CHECKING:  # the engines import numpy and astropy: only after the OSF claim (fast start-up)
    from astropy.io import fits

    from pipeline.core.asntable import AsnTable
    from pipeline.science.calib.api import LogSink

CR_SWITCHES = ("CRCORR", "RPTCORR")


def _raw(work: Path, name: DatasetName) -> Path:
    for suffix in ("raw", "rawtag_a", "rawtag", "rawtag_b", "rawacq", "rawaccum"):
        path = work / name.file(suffix)
        if path.is_file():
            return path
    raise BadInput(f"no raw file for {name} in {work}: has 2FITS run?")


def _cr_stack(header: fits.Header, n_members: int) -> bool:
    return n_members >= 2 and any(str(header.get(s, "")).strip().upper() == "PERFORM" for s in CR_SWITCHES)


def association_lock(work: Path, asn: DatasetName, timeout: float) -> AbstractContextManager[None]:
    """Serialise the "am I the last member?" decision between parallel CA nodes."""
    return file_lock(work / f".{asn.name}_ca.lock", timeout, f"CA of {asn.name}")


def _ready_marker(work: Path, member: DatasetName) -> Path:
    return work / f".{member.name}_ca.ready"


class Calibrate(Stage):
    name = "ca"
    column = "CA"
    scope = "exposure"
    summary = "calibrate an exposure (built-in engine, hstcal or calcos); the last CR-SPLIT member combines"
    modules = ("pipeline.science.calib.api", "pipeline.science.calib.builtin")

    def run(self, ctx: StageContext) -> None:
        from pipeline.science.calib.api import log_sink
        from pipeline.science.calib.sbc import NothingToDo

        if ctx.dataset.is_association:
            self._finish(ctx, ctx.dataset, ctx.work, log_sink(ctx.trailer))
            return
        try:
            self._exposure(ctx)
        except NothingToDo as exc:  # calacs exits 0 and writes nothing; AC then reports the missing _flt
            ctx.warn(str(exc))

    # ---------------------------------------------------------------------------------- exposure
    def _exposure(self, ctx: StageContext) -> None:
        from astropy.io import fits

        from pipeline.science.calib import builtin
        from pipeline.science.calib.api import choose_engine, log_sink
        from pipeline.science.calib.cos import run_calcos
        from pipeline.science.calib.hstcal import run_hstcal
        from pipeline.science.calib.ir import is_ir

        entry = ctx.osf.find(ctx.dataset)
        parent = parse_dataset(entry.parent) if entry is not None and entry.parent else None
        work = ctx.site.work_dir(parent) if parent is not None else ctx.work
        raw = _raw(work, ctx.dataset)
        header = fits.getheader(raw, 0)
        instrument = str(header.get("INSTRUME", "")).strip().upper()
        log = log_sink(ctx.trailer)
        asn = self._asn(work, parent) if parent is not None else None
        if instrument == "COS":
            if asn is None:
                products = run_calcos(raw, work, site=ctx.site, log=log)
                ctx.log(f"{ctx.dataset}: calcos wrote {', '.join(p.name for p in products)}")
                return
            _ready_marker(work, ctx.dataset).touch()
            self._maybe_finish(ctx, asn, work, log)
            return
        engine = choose_engine(ctx.site.calibration.engine, instrument, dict(os.environ), log)
        stacked = asn is not None and asn.asn_type in ("CR-SPLIT", "REPEAT") and _cr_stack(header, len(asn.members))
        ctx.log(f"{ctx.dataset}: calibration engine {engine}")
        if engine == "hstcal":
            if stacked:
                _ready_marker(work, ctx.dataset).touch()
                self._maybe_finish(ctx, asn, work, log)
                return
            products = run_hstcal(instrument, raw, [], work, site=ctx.site, log=log)
            ctx.log(f"{ctx.dataset}: wrote {', '.join(p.name for p in products)}")
            return
        if is_ir(header):   # a MULTIACCUM ramp: one node writes _ima and _flt
            from pipeline.science.calib.ir import engine as ir_engine  # the IR engine for IR only
            from pipeline.science.calib.ir import repeat as ir_repeat

            repeat = asn is not None and asn.asn_type == "REPEAT" and ir_repeat.sums(header, len(asn.members))
            out = ir_engine.calibrate_ir(raw, work, site=ctx.site, log=log, repeat=repeat)
            ctx.log(f"{ctx.dataset}: wrote {ctx.dataset.file('ima')} and {out.name}")
            if repeat:  # RPTCORR: the last member sums the members' _flt into the _crj
                _ready_marker(work, ctx.dataset).touch()
                self._maybe_finish(ctx, asn, work, log)  # type: ignore[arg-type]
            return
        if stacked and builtin.detector_of(header, raw) is builtin.SBC:  # ACS2D now, ACSSUM by the last member
            out = builtin.calibrate_exposure(raw, work, site=ctx.site, log=log)
            ctx.log(f"{ctx.dataset}: wrote {out.name}")
            _ready_marker(work, ctx.dataset).touch()
            self._maybe_finish(ctx, asn, work, log)  # type: ignore[arg-type]
            return
        blv = builtin.ccd_phase(raw, site=ctx.site, log=log)
        blv_path = work / ctx.dataset.file("blv_tmp")
        if not stacked:
            out = builtin.twod_phase(blv, work / ctx.dataset.file("flt"), site=ctx.site, log=log)
            ctx.log(f"{ctx.dataset}: wrote {out.name}")
            flc = builtin.calibrate_cte(raw, work, site=ctx.site, log=log)
            if flc is not None:
                ctx.log(f"{ctx.dataset}: wrote {flc.name} (CTE branch)")
            return
        blcs = builtin.cte_blcs([raw], site=ctx.site, log=log)
        for blc in blcs or []:  # the CTE branch's member, combined into _crc with the others; first, as
            builtin.save_intermediate(blc, work / ctx.dataset.file("blc_tmp"))  # blv_tmp means "ready"
        builtin.save_intermediate(blv, blv_path)
        ctx.log(f"{ctx.dataset}: wrote {blv_path.name}{' and its blc_tmp' if blcs else ''}; "
                f"the last member of {parent} combines")
        self._maybe_finish(ctx, asn, work, log)

    # ------------------------------------------------------------------------------- association
    @staticmethod
    def _asn(work: Path, parent: DatasetName) -> AsnTable | None:
        from pipeline.core.asntable import read_asn_table

        path = work / parent.file("asn")
        return read_asn_table(path) if path.is_file() else None

    def _maybe_finish(self, ctx: StageContext, asn: AsnTable, work: Path, log: LogSink | None) -> None:
        """Finish the association if every member is ready (decided under the association lock)."""
        name = parse_dataset(asn.name)
        members = [parse_dataset(m) for m in asn.members if asn.present.get(m, True)]
        with association_lock(work, name, ctx.site.database.busy_timeout):
            ready = [self._readiness(work, m) for m in members]
            if not all(p.is_file() for p in ready):
                waiting = [m.name for m, p in zip(members, ready, strict=True) if not p.is_file()]
                ctx.log(f"{asn.name}: waiting for {', '.join(waiting)}; the last member combines")
                return
            done = work / f".{asn.name}_ca.done"
            if done.is_file() and done.stat().st_mtime >= max(p.stat().st_mtime for p in ready):
                ctx.log(f"{asn.name}: already combined by another member")
                return
            both = self._tee(log, Trailer(ctx.site.trailer_path(name)))
            self._finish(ctx, name, work, both)
            done.touch()

    @staticmethod
    def _readiness(work: Path, member: DatasetName) -> Path:
        blv = work / member.file("blv_tmp")
        return blv if blv.is_file() else _ready_marker(work, member)

    @staticmethod
    def _tee(log: LogSink | None, trailer: Trailer) -> Callable[[str, str], None]:
        def sink(severity: str, text: str) -> None:
            trailer.write(severity, text)
            if log is not None:
                log(severity, text)
        return sink

    def _finish(self, ctx: StageContext, name: DatasetName, work: Path, log: LogSink | None) -> None:
        from astropy.io import fits

        from pipeline.core.asntable import ASN_KINDS, read_asn_table
        from pipeline.science.calib import builtin
        from pipeline.science.calib.api import choose_engine
        from pipeline.science.calib.cos import run_calcos
        from pipeline.science.calib.hstcal import run_hstcal
        from pipeline.science.calib.imageio import read_exposure
        from pipeline.science.calib.ir import is_ir

        asn_path = work / name.file("asn")
        if not asn_path.is_file():
            ctx.log(f"{name}: no association table; nothing to combine")
            return
        instrument = str(fits.getval(asn_path, "INSTRUME", 0)).strip().upper()
        if instrument == "COS":
            products = run_calcos(asn_path, work, site=ctx.site, log=log)
            ctx.log(f"{name}: calcos wrote {len(products)} products")
            return
        asn = read_asn_table(asn_path)
        members = [parse_dataset(m) for m in asn.members if asn.present.get(m, True)]
        first = fits.getheader(_raw(work, members[0]), 0)
        if not (asn.asn_type in ("CR-SPLIT", "REPEAT") and _cr_stack(first, len(members)) and asn.products):
            ctx.log(f"{name}: {asn.asn_type} association; members are calibrated individually")
            return
        engine = choose_engine(ctx.site.calibration.engine, instrument, dict(os.environ), log)
        if engine == "hstcal":
            products = run_hstcal(instrument, asn_path, [_raw(work, m) for m in members], work, site=ctx.site,
                                  log=log)
        elif is_ir(first):
            from pipeline.science.calib.ir import repeat as ir_repeat  # the IR engine for IR only

            if not ir_repeat.sums(first, len(members)):
                ctx.log(f"{name}: RPTCORR is not PERFORM; members are calibrated individually")
                return
            products = [ir_repeat.sum_repeats([work / m.file("flt") for m in members], work, asn.products[0],
                                              site=ctx.site, log=log)]
        elif builtin.detector_of(first, asn_path) is builtin.SBC:
            products = builtin.sum_sbc_repeats([work / m.file("flt") for m in members], work, asn.products[0],
                                               log=log)
        else:
            blv_paths = [work / m.file("blv_tmp") for m in members]
            missing = [p.name for p in blv_paths if not p.is_file()]
            if missing:
                raise BadInput(f"{name}: member intermediates missing ({', '.join(missing)}); run owl-ca on "
                               "every member first")
            memtype = ASN_KINDS[asn.asn_type][1]
            products = builtin.finish_stack([read_exposure(p) for p in blv_paths], work, asn.products[0],
                                            memtype=memtype, site=ctx.site, log=log)
            blc_paths = [work / m.file("blc_tmp") for m in members]
            if all(p.is_file() for p in blc_paths):
                products += builtin.finish_stack([read_exposure(p) for p in blc_paths], work, asn.products[0],
                                                 cte=True, memtype=memtype, site=ctx.site, log=log)
        ctx.log(f"{name}: wrote {', '.join(p.name for p in products)}")


_run_stage = stage_main(Calibrate)


def main(argv: list[str] | None = None) -> NoReturn:
    """Run the Calibrate stage (``owl-ca``). As ``owl calibrate`` does, the heap is frozen at exit: the
    last collection over a calibration's numpy/astropy objects is ~0.3 s of a CA process
    (:mod:`pipeline.core.procexit`)."""
    skip_exit_collection()
    _run_stage(argv)
