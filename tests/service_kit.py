"""An archive with public and exclusive datasets, and the real service on a free loopback port."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from astropy.io import fits

from bench.service_load import free_port
from pipeline.archive.store import Archive
from pipeline.service.obscore import mjd

RECENT = (dt.date.today() - dt.timedelta(days=20)).isoformat()
#: dataset → (instrument, detector, filters, target, ra, dec, date, program, exptime)
DATASETS = {
    "ib4606c5q": ("WFC3", "UVIS", {"FILTER": "F606W"}, "NGC-1300", 49.92, -19.41, "2010-02-11", "11360", 500.0),
    "ib4606c6q": ("WFC3", "UVIS", {"FILTER": "F814W"}, "NGC-1300", 49.93, -19.42, "2010-02-11", "11360", 400.0),
    "ic1h01a1q": ("WFC3", "IR", {"FILTER": "F160W"}, "M-83", 204.25, -29.86, "2012-03-01", "12513", 1200.0),
    "jcx901e2q": ("ACS", "WFC", {"FILTER1": "F814W", "FILTER2": "CLEAR2L"}, "COSMOS-7", 150.10, 2.21, RECENT,
                  "16001", 600.0),
}
PRIVATE = "jcx901e2q"


def make_fits(path: Path, dataset: str, *, seed: int, context: str = "hst_0300.pmap", shape=(64, 64)) -> Path:
    inst, det, filters, target, ra, dec, date, program, exptime = DATASETS[dataset]
    h = fits.Header()
    h.update({"INSTRUME": inst, "DETECTOR": det, **filters, "TARGNAME": target, "RA_TARG": ra, "DEC_TARG": dec,
              "DATE-OBS": date, "TIME-OBS": "10:00:00", "EXPSTART": mjd(f"{date}T10:00:00"), "EXPTIME": exptime,
              "PROPOSID": int(program), "PR_INV_L": "Hubble", "PR_INV_F": "Edwin", "CRDS_CTX": context,
              "ROOTNAME": dataset.upper(), "CAL_VER": "3.7.1"})
    data = np.random.default_rng(seed).normal(size=shape).astype("f4")
    fits.HDUList([fits.PrimaryHDU(header=h), fits.ImageHDU(data, name="SCI")]).writeto(path, overwrite=True)
    return path


def fill(site, work: Path) -> dict[str, dict[str, Path]]:
    """Archive raw + flt of every dataset (version 1); return the source files by dataset and kind."""
    work.mkdir(parents=True, exist_ok=True)
    archive = Archive(site)
    out: dict[str, dict[str, Path]] = {}
    for i, ds in enumerate(DATASETS):
        raw = make_fits(work / f"{ds}_raw.fits", ds, seed=2 * i)
        flt = make_fits(work / f"{ds}_flt.fits", ds, seed=2 * i + 1, shape=(256, 256))
        archive.ingest(ds, [(raw, "raw"), (flt, "flt")])
        out[ds] = {"raw": raw, "flt": flt}
    return out


@contextlib.contextmanager
def running(app) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in a thread; yield its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
