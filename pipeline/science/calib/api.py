"""``calibrate()``: raw exposures or associations in, calibrated products out, with any engine.

Engine choice for WFC3 and ACS: ``builtin`` (our numpy engine), ``hstcal`` (``calwf3.e`` /
``calacs.e``, which must be on PATH), or ``auto`` (hstcal when installed, else builtin). COS always
goes through calcos. The engine used is logged and recorded in each product (``CAL_ENG``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from astropy.io import fits

from pipeline.core.asntable import ASN_KINDS, AsnTable, read_asn_table
from pipeline.core.errors import BadInput, ConfigError, Unsupported
from pipeline.core.trailer import Trailer
from pipeline.science.calib import builtin, sbc
from pipeline.science.calib.cos import run_calcos
from pipeline.science.calib.hstcal import executable_for, run_hstcal
from pipeline.science.calib.products import engine_version

ENGINES = ("auto", "builtin", "hstcal")
LogSink = Callable[[str, str], None]


def log_sink(trailer: Trailer | Path | str | None, echo: Callable[[str], None] | None = None) -> LogSink | None:
    """A ``(severity, text)`` callable writing to a trailer (and optionally echoing)."""
    target = Trailer(trailer) if isinstance(trailer, (str, Path)) else trailer
    if target is None and echo is None:
        return None

    def sink(severity: str, text: str) -> None:
        if target is not None:
            target.write(severity, text)
        if echo is not None:
            echo(f"{severity}: {text}" if severity != "info" else text)

    return sink


def choose_engine(engine: str, instrument: str, environ: Mapping[str, str], log: LogSink | None = None) -> str:
    """The engine that will run: ``auto`` is hstcal when its program is on PATH, else builtin. PATH
    entries that cannot be read are skipped and, since hstcal might sit in one, said in ``log``."""
    if engine not in ENGINES:
        raise ConfigError(f"unknown calibration engine {engine!r} (choose from {', '.join(ENGINES)})")
    if engine == "builtin":
        return "builtin"
    unreadable: list[str] = []
    exe = executable_for(instrument, environ, unreadable)
    if exe is None and log is not None:
        for entry in unreadable:
            log("warn", f"PATH entry {entry} cannot be read by this user: skipped while looking for hstcal")
    if engine == "hstcal":
        if exe is None:
            raise Unsupported(f"engine 'hstcal' requested but the hstcal program for {instrument} is not on PATH",
                              keyword="INSTRUME")
        return "hstcal"
    return "hstcal" if exe is not None else "builtin"


def _instrument(path: Path) -> str:
    try:
        return str(fits.getval(path, "INSTRUME", 0)).strip().upper()
    except (OSError, KeyError) as exc:
        raise BadInput(f"cannot read INSTRUME: {exc}", path=path, keyword="INSTRUME") from None


def calibrate(inputs: Sequence[Path | str], outdir: Path | str, engine: str = "auto", site: object | None = None,
              trailer: Trailer | Path | str | None = None, *, environ: Mapping[str, str] | None = None,
              echo: Callable[[str], None] | None = None) -> list[Path]:
    """Calibrate ``_raw.fits`` exposures and/or ``_asn.fits`` associations into ``outdir``.

    A CR-SPLIT/REPEAT association gives its ``_crj`` plus a ``_flt`` per member; other
    associations and single exposures give ``_flt`` files (COS: calcos's products). ``site`` (a
    loaded Site) lets ``iref$``/``jref$``/``lref$`` fall back on the site's CRDS cache when those
    variables are unset. Returns the product paths.
    """
    env = dict(os.environ if environ is None else environ)
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    log = log_sink(trailer, echo)
    products: list[Path] = []
    for item in inputs:
        products.extend(calibrate_one(Path(item), out, engine=engine, site=site, environ=env, log=log))
    return products


def calibrate_one(path: Path, outdir: Path, *, engine: str, site: object | None, environ: Mapping[str, str],
                  log: LogSink | None) -> list[Path]:
    if not path.is_file():
        raise BadInput(f"input {path} does not exist", path=path)
    is_asn = path.name.endswith("_asn.fits")
    if not is_asn and "_raw" not in path.name and "_rawtag" not in path.name:
        raise BadInput(f"{path.name}: input names must contain '_raw' (an exposure) or end in '_asn.fits'",
                       path=path)
    instrument = _instrument(path)
    if instrument == "COS":
        if log:
            log("info", f"{path.name}: COS, calibration engine calcos")
        return run_calcos(path, outdir, site=site, environ=environ, log=log)
    if instrument not in ("WFC3", "ACS"):
        raise Unsupported(f"instrument {instrument or '(none)'} is not calibrated by owlpipe (WFC3, ACS and COS are)",
                          path=path, keyword="INSTRUME")
    chosen = choose_engine(engine, instrument, environ, log)
    if log:
        log("info", f"{path.name}: calibration engine {chosen}"
                    + (f" ({engine_version('builtin')})" if chosen == "builtin" else ""))
    members = []
    asn = None
    if is_asn:
        asn = read_asn_table(path)
        members = [path.parent / f"{m}_raw.fits" for m in asn.members if asn.present.get(m, True)]
        for m in members:
            if not m.is_file():
                raise BadInput(f"association member {m.name} is missing next to {path.name}", path=path,
                               keyword="MEMNAME")
    if chosen == "hstcal":
        return run_hstcal(instrument, path, members, outdir, site=site, environ=environ, log=log)
    try:
        return _builtin(path, asn, members, outdir, {"site": site, "environ": environ, "log": log})
    except sbc.NothingToDo as exc:
        if log:
            log("warn", str(exc))
        return []


def _builtin(path: Path, asn: AsnTable | None, members: list[Path], outdir: Path,
             kw: dict[str, object]) -> list[Path]:
    """The built-in engine's products for an exposure or an association."""
    if asn is None:
        flc = builtin.calibrate_cte(path, outdir, **kw)
        return [builtin.calibrate_exposure(path, outdir, **kw), *([flc] if flc else [])]
    if asn.asn_type in ("CR-SPLIT", "REPEAT") and asn.products:
        return builtin.calibrate_stack(members, outdir, asn.products[0], memtype=ASN_KINDS[asn.asn_type][1], **kw)
    return [p for m in members for p in _builtin(m, None, [], outdir, kw)]  # each member's flt (and flc)
