"""Running an external calibration program: environment, output capture, provenance stamping.

Shared by the hstcal (calwf3.e, calacs.e) and calcos delegates.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from astropy.io import fits

from pipeline.core.errors import OwlError
from pipeline.core.exitcodes import ExitCode
from pipeline.core.fsutil import atomic_path
from pipeline.science.calib.products import stamp

LogSink = Callable[[str, str], None]


@dataclass(frozen=True)
class RunResult:
    returncode: int
    output: str


def reference_environment(environ: Mapping[str, str], variable: str, site: object | None) -> dict[str, str]:
    """The child's environment with ``variable`` (iref, jref, lref) ending in '/'.

    A value from the caller's environment is kept (a missing trailing slash is added, since these
    programs concatenate without a separator); otherwise the site's CRDS reference directory is used.
    """
    env = dict(environ)
    value = env.get(variable)
    if not value and site is not None:
        value = str(Path(site.areas.crds) / "references" / "hst")  # type: ignore[attr-defined]
    elif not value and env.get("CRDS_PATH"):
        value = str(Path(env["CRDS_PATH"]) / "references" / "hst")
    if value:
        env[variable] = value if value.endswith("/") else value + "/"
    return env


def run(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout: float | None = None) -> RunResult:
    """Run a program, stdout and stderr merged; a missing executable or a timeout is an OwlError."""
    try:
        proc = subprocess.run(list(argv), cwd=cwd, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, errors="replace", timeout=timeout, check=False)
    except FileNotFoundError:
        raise OwlError(f"{argv[0]} not found on PATH", code=ExitCode.CONFIG) from None
    except subprocess.TimeoutExpired:
        raise OwlError(f"{Path(argv[0]).name} did not finish within {timeout:.0f} s",
                       code=ExitCode.TRANSIENT_IO) from None
    return RunResult(proc.returncode, proc.stdout or "")


def last_error_line(output: str) -> str:
    """The most telling line of a program's output: its last ERROR line, else its last line."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "ERROR" in ln.upper()]
    return (errors or lines or ["(no output)"])[-1][:300]


def stamp_products(paths: Sequence[Path], engine: str) -> None:
    """Add our provenance keywords (CAL_ENG, OPUS_VER, CSYS_VER, PROCTIME) to products another program
    wrote; its own CAL_VER is kept. Rewritten atomically."""
    for path in paths:
        with fits.open(path, memmap=False) as hdul:
            own_calver = hdul[0].header.get("CAL_VER")
            stamp(hdul[0].header, engine)
            if own_calver is not None:
                hdul[0].header["CAL_VER"] = (own_calver, "calibration software version")
            with atomic_path(path) as tmp:
                hdul.writeto(tmp, overwrite=True)


def include_log(log: LogSink | None, text: str, source: str) -> None:
    """Copy another program's trailer or output into ours, line by line."""
    if log is None:
        return
    log("info", f"---- begin {source} ----")
    for line in text.splitlines():
        if line.strip():
            log("info", line.rstrip())
    log("info", f"---- end {source} ----")


def which(name: str, environ: Mapping[str, str]) -> Path | None:
    """``shutil.which`` on the PATH of ``environ``."""
    for d in environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = Path(d) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None
