"""Products figures: AstroDrizzle on a full-frame WFC3/UVIS pair, previews per product, archive speed.

MD is the slowest stage after calibration, so its wall time and memory on real-size inputs (two
full-frame 2-chip ``_flt`` files, 4096 x 2051 per chip) decide how many MD nodes a machine runs at
once (``throttles.max_jobs.md``). Previews run once per product; the archive figures cover ingest
throughput and selecting among 100,000 catalogued datasets by header keywords (reprocessing).
"""

from __future__ import annotations

import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import Result, median_time, peak_rss_mb

REALDATA = Path(os.environ.get("OWL_REALDATA", Path(__file__).resolve().parents[2] / "shared" / "realdata"))
FULL = (2051, 4096)
CATALOGUE = 100_000


def _timed(fn):
    """(result, wall s, CPU s of this process) of one call."""
    t0, c0 = time.perf_counter(), time.process_time()
    value = fn()
    return value, time.perf_counter() - t0, time.process_time() - c0


def _import_figures() -> list[Result]:
    """What an MD process pays to import AstroDrizzle: the full package vs the lean import an MD node does
    (``Drizzle.load``, with the collector paused as in every ``owl-<stage>``), each in a fresh interpreter
    (wall, and CPU from the child's rusage)."""
    figures = []
    md_node = ("from pipeline.core import startup; startup.begin()\n"
               "with startup.loading():\n    from pipeline.science import drizzle; drizzle.import_astrodrizzle()")
    for label, code in (("import drizzlepac (full package)", "from drizzlepac import astrodrizzle"),
                        ("import drizzlepac as the MD node does (lean, collector paused)", md_node)):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-W", "ignore", "-c", code], check=True, capture_output=True)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        figures.append(Result(label, wall, "s", goal=5.0, details={"cpu_s": round(cpu, 2)}))
    return figures


def _md(tmp: Path) -> tuple[list[Result], list[Path], Path]:
    """AstroDrizzle on a full-frame UVIS dither pair with STScI's two-image MDRIZTAB row (``minmed``,
    sky matching, ``driz_cr``), as MD runs it: once with drizzlepac exactly as installed, once with the
    bit-identical fast paths of ``pipeline.science.drizzle_exact`` (issue 15: >= 1.5x), once more with the
    per-image steps in 2 processes as on a 2-CPU MD node (``drizzle_fork``; wall, CPU of this process plus the
    children), products compared."""
    import numpy as np
    from astropy.io import fits

    from pipeline.core import usage
    from pipeline.core.names import parse_dataset
    from pipeline.science.drizzle import drizzle
    from pipeline.simulate.mdriztab import mdriz_table
    from tests.products_data import Field, measured_offsets, star_field, write_flt

    sky = star_field(Field(), 400, FULL, seed=11)
    work = tmp / "work"
    cache = tmp / "crds"
    (cache / "references" / "hst").mkdir(parents=True)
    mdriz_table("WFC3", "UVIS", "owlmd000i_mdz.fits").writeto(cache / "references" / "hst" / "owlmd000i_mdz.fits")
    flts = [write_flt(work / f"idn101a{i + 1}q_flt.fits", sky, shape=FULL, asn_id="idn101010", seed=i,
                      dither=(0.0, 0.0) if i == 0 else (15.5, 9.5), cosmic_rays=2000) for i in range(2)]
    for flt in flts:
        fits.setval(flt, "MDRIZTAB", value="iref$owlmd000i_mdz.fits")
    name = parse_dataset("idn101010")
    plain, plain_s, plain_cpu = _timed(lambda: drizzle(flts, name, work, cache=cache, fast_paths=False))
    os.replace(plain.path, tmp / "plain_drz.fits")
    product, md_s, md_cpu = _timed(lambda: drizzle(flts, name, work, cache=cache))
    os.replace(product.path, tmp / "md1_drz.fits")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    forked, two_s, two_cpu = _timed(lambda: drizzle(flts, name, work, cache=cache, processes=2))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    two_cpu += after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime

    def same(path: Path) -> bool:
        with fits.open(path) as a, fits.open(tmp / "plain_drz.fits") as b:
            return all(np.array_equal(a[e].data, b[e].data, equal_nan=True) for e in ("SCI", "WHT", "CTX"))

    two_identical = same(forked.path)
    os.replace(tmp / "md1_drz.fits", product.path)  # the 1-process product, for the figures below
    identical = same(product.path)
    offsets = measured_offsets(product.path, sky.stars)
    load = os.getloadavg()[0]
    imports = _import_figures()
    results = [
        *imports,
        Result("MD: AstroDrizzle full-frame UVIS pair, MDRIZTAB row 2, drizzlepac as installed, 1 core", plain_s, "s",
               details={"cpu_s": round(plain_cpu, 2), "load": round(load, 1)}),
        Result("MD: the same with the bit-identical fast paths", md_s, "s", goal=plain_s / 1.5,
               details={"cpu_s": round(md_cpu, 2), "speed-up": round(plain_s / md_s, 2),
                        "cpu speed-up": round(plain_cpu / md_cpu, 2), "identical": identical,
                        "fast_paths": list(product.fast_paths), "peak_rss_mb": round(peak_rss_mb(), 1),
                        "product_mb": round(product.path.stat().st_size / 2**20, 1)}),
        Result("MD: the same, per-image steps in 2 processes (2-CPU node, drizzle_fork)", two_s, "s",
               goal=plain_s / 1.5,
               details={"cpu_s": round(two_cpu, 2), "speed-up": round(plain_s / two_s, 2),
                        "speed-up with imports (full vs lean)": round((plain_s + imports[0].value)
                                                                      / (two_s + imports[1].value), 2),
                        "identical": two_identical, "peak_rss_mb (this process + children's growth)":
                        round(usage.peak_rss_mb(), 1), "load": round(os.getloadavg()[0], 1)}),
        Result("MD: median star offset from WCS in the full-frame _drz", float(sorted(offsets)[len(offsets) // 2]),
               "pixel", goal=0.5, details={"stars": len(offsets)}),
    ]
    return results, flts, product.path


def _md_node(tmp: Path, flts: list[Path]) -> list[Result]:
    """The MD node of a CTE-corrected pair: ``_drz`` from the ``_flt`` and ``_drc`` from the ``_flc`` (here
    the same full-frame files), one after the other vs side by side (``drizzle_sets``, 2 processes). Wall,
    and CPU of this process plus its children."""
    from pipeline.core.names import parse_dataset
    from pipeline.science.drizzle_sets import PROCESSES_VARIABLE, drizzle_sets

    results = []
    for n in (1, 2):
        work = tmp / f"node{n}"
        work.mkdir()
        sets = {kind: [Path(shutil.copy(f, work / f.name.replace("_flt", f"_{kind}"))) for f in flts]
                for kind in ("flt", "flc")}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        products, wall, cpu = _timed(lambda s=sets, w=work, k=n: drizzle_sets(
            s, parse_dataset("idn101010"), w, cache=tmp / "crds", environ={PROCESSES_VARIABLE: str(k)}))
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu += after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        results.append(Result(f"MD node, full-frame UVIS pair with _flc (_drz + _drc), {n} process(es)", wall, "s",
                              details={"cpu_s": round(cpu, 2), "load": round(os.getloadavg()[0], 1),
                                       "products": [p.path.name for p in products]}))
        shutil.rmtree(work)
    results[1].details["speed-up"] = round(results[0].value / results[1].value, 2)
    return results


def _previews(tmp: Path, flt: Path, drz: Path) -> list[Result]:
    from pipeline.science.preview import make_previews

    out = tmp / "previews"
    sources = [("_flt full frame (2 chips)", flt), ("_drz full frame", drz)]
    if (REALDATA / "acs_hrc_j8bt").is_dir():
        raw = tmp / "j8bt05njq_raw.fits"
        shutil.copy(REALDATA / "acs_hrc_j8bt/raw/j8bt05njq_raw.fits", raw)
        x1dsum = tmp / "ldfd01010_x1dsum.fits.gz"
        shutil.copy(REALDATA / "cos_fuv_ldfd01010/calibrated_stsci/ldfd01010_x1dsum.fits.gz", x1dsum)
        sources += [("_raw ACS/HRC (real)", raw), ("_x1dsum COS/FUV plot (real)", x1dsum)]
    results = []
    for label, path in sources:
        seconds, _ = median_time(lambda p=path: make_previews(p, out), repeats=3, warmup=1)
        results.append(Result(f"PVW: preview {label}", seconds, "s", goal=5.0))
    return results


def _pvw_association(tmp: Path, flts: list[Path], drz: Path) -> list[Result]:
    """PVW's loop (stages/pvw.py without the OSF) over a full-frame WFC3/UVIS dither pair's work area.

    With CTE on that is 8 full-frame images: the pair's ``_raw`` (from ``owl simulate``: scaled
    integers), ``_flt`` and ``_flc`` (the MD figure's synthetic 2-chip files) and ``_drz``/``_drc``
    (its AstroDrizzle product). Issue 15's goal: <= 1.5 s per association.
    """
    from pipeline.core.names import parse_dataset
    from pipeline.science import preview, products
    from pipeline.simulate.downlink import simulate_downlink, write_fits

    work = tmp / "pvw"
    (asn,) = simulate_downlink(3, "full", 1, ["wfc3"])
    write_fits([asn], work)
    name, members = parse_dataset(asn.name), [parse_dataset(m.rootname) for m in asn.members]
    for member, flt in zip(members, flts, strict=True):
        for suffix in ("flt", "flc"):
            shutil.copy(flt, work / member.file(suffix))
    for suffix in ("drz", "drc"):
        shutil.copy(drz, work / name.file(suffix))
    sources = products.previewable_files(work, name, members)

    def pvw() -> None:
        for path in sources:
            preview.make_previews(path, work)

    seconds, _ = median_time(pvw, repeats=3, warmup=1)
    cpu = time.process_time()
    pvw()
    cpu = time.process_time() - cpu  # the figure that holds when other jobs share the cores
    return [Result(f"PVW: full-frame UVIS dither pair ({len(sources)} images: raw, flt, flc, drz, drc)", seconds, "s",
                   goal=1.5, details={"per_image_s": round(seconds / len(sources), 3), "cpu_s": round(cpu, 3)})]


def _archive(tmp: Path, flt: Path, drz: Path) -> list[Result]:
    from sqlalchemy import insert

    from pipeline.archive.store import Archive, ArchiveFile, ArchiveVersion
    from pipeline.core.config import init_site

    site = init_site(tmp / "site")
    arch = Archive(site)
    size = flt.stat().st_size + drz.stat().st_size
    t0 = time.perf_counter()
    arch.ingest("idn101010", [(flt, "flt"), (drz, "drz")])
    ingest_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = arch.verify()
    verify_s = time.perf_counter() - t0

    rng = random.Random(7)
    detectors = [("WFC3", "UVIS"), ("WFC3", "IR"), ("ACS", "WFC"), ("ACS", "HRC")]
    rows, files = [], []
    for i in range(CATALOGUE):
        instrument, detector = rng.choice(detectors)
        header = {"INSTRUME": instrument, "DETECTOR": detector, "CCDAMP": rng.choice(["ABCD", "A", "C"]),
                  "CCDGAIN": rng.choice([1.0, 1.5, 2.0]), "FILTER": f"F{rng.randint(200, 900)}W",
                  "DATE-OBS": f"20{rng.randint(10, 24)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
                  "EXPSTART": 55000 + rng.random() * 5000, "APERTURE": "FULL", "SUBARRAY": False}
        name = f"i{i:05d}a{rng.randint(1, 9)}q"
        rows.append({"id": 1000 + i, "dataset": name, "version": 1, "ingested": time.time(),
                     "instrument": instrument, "detector": detector, "header": header})
        files.append({"version_id": 1000 + i, "dataset": name, "version": 1, "kind": "raw",
                      "name": f"{name}_raw.fits", "sha256": f"{i:064x}", "size": 1, "ingested": time.time()})
    with arch.engine.begin() as conn:  # catalogue rows only: the figure is about selection, not storage
        conn.execute(insert(ArchiveVersion), rows)
        conn.execute(insert(ArchiveFile), files)
    t0 = time.perf_counter()
    picked = [d for d, _v, h in arch.headers() if h["DETECTOR"] == "UVIS" and h["CCDAMP"] == "ABCD"]
    scan_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    queried = arch.query(header={"DETECTOR": "UVIS", "CCDAMP": "ABCD"})
    return [
        Result("archive: ingest flt + drz from outside the site (copy hashing once, catalogue)",
               size / 2**20 / ingest_s, "MiB/s", goal=100.0, lower_is_better=False),
        Result("archive: verify (re-hash every blob)", size / 2**20 / verify_s, "MiB/s", goal=200.0,
               lower_is_better=False, details={"ok": report.ok}),
        Result(f"archive: newest raw headers of {CATALOGUE:,} datasets, selected in Python", scan_s, "s", goal=10.0,
               details={"selected": len(picked)}),
        Result(f"archive: header-keyword query over {CATALOGUE:,} datasets in SQL", time.perf_counter() - t0, "s",
               goal=5.0, details={"files": len(queried)}),
    ]


def run() -> list[Result]:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        results, flts, drz = _md(tmp)
        results += _md_node(tmp, flts)
        results += _previews(tmp, flts[0], drz)
        results += _pvw_association(tmp, flts, drz)
        results += _archive(tmp, flts[0], drz)
    return results
