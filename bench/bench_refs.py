"""Best-reference figures on the real 2015 HST context (hst_0349.pmap) and the real ACS/HRC raws.

What matters: the one-off cost of importing crds and loading a whole context (paid once per RF
process, once per reprocessing campaign), and the per-dataset cost afterwards. Issue 7 needs
100,000 catalogued datasets re-looked-up in under 60 s; the projection uses only the types whose
rules differ between two real contexts, as a reprocessing selection does (``refs.changed_types``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from bench.common import Result, median_time, peak_rss_mb

REALDATA = Path(os.environ.get("OWL_REALDATA", Path(__file__).resolve().parents[2] / "shared" / "realdata"))
NEW, OLD = "hst_0349.pmap", "hst_0300.pmap"
CAMPAIGN = 100_000
DATASETS = 3000


def run() -> list[Result]:
    if not (REALDATA / "crds" / "mappings_hst_2015").is_dir():
        print(f"   skipped: real HST data not found at {REALDATA} (set OWL_REALDATA)")
        return []
    t0 = time.perf_counter()
    import crds.core.rmap  # noqa: F401  (the import every RF process pays)

    import_s = time.perf_counter() - t0
    from pipeline.science import refs
    from tests.refs_support import varied_params

    results = [Result("import crds", import_s, "s")]
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "crds"
        (cache / "mappings").mkdir(parents=True)
        (cache / "mappings" / "hst").symlink_to(REALDATA / "crds" / "mappings_hst_2015")
        refs.write_server_config(cache, NEW)

        t0 = time.perf_counter()
        refs.load_context(cache, NEW, instruments=["ACS"])  # what an ACS RF node loads
        acs_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        new = refs.load_context(cache, NEW)
        rest_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        old = refs.load_context(cache, OLD)
        second_s = time.perf_counter() - t0
        results += [
            Result(f"load context {NEW}, ACS rules only (an RF node)", acs_s, "s"),
            Result(f"load context {NEW}, all 6 instruments", acs_s + rest_s, "s",
                   details={"peak_rss_mb": round(peak_rss_mb(), 1)}),
            Result(f"load a second context {OLD} (shares rmaps)", second_s, "s"),
        ]

        raws = sorted((REALDATA / "acs_hrc_j8bt" / "raw").glob("*_raw.fits"))
        changed = refs.changed_types(old, new)["ACS"]
        # a catalogue-like set: the real headers with dates, amplifiers, gains and filters varied, so
        # the figures include first-time matching, not only replays of the same three datasets
        base = [refs.dataset_parameters(p) for p in raws]
        catalogue = [v for i, b in enumerate(base) for v in varied_params(b, DATASETS // len(base), seed=i)]
        t0 = time.perf_counter()
        for params in catalogue:
            new.lookup(params, changed)
        diff_ms = (time.perf_counter() - t0) / len(catalogue) * 1000
        t0 = time.perf_counter()
        for params in catalogue:
            new.lookup(params)
        all_ms = (time.perf_counter() - t0) / len(catalogue) * 1000
        results += [
            Result(f"bestrefs per dataset, {len(changed)} types changed {OLD}->{NEW} (mean of {len(catalogue)})",
                   diff_ms, "ms", details={"types": changed}),
            Result(f"bestrefs per dataset, all {len(new.reftypes('ACS'))} ACS types (mean of {len(catalogue)})",
                   all_ms, "ms"),
            Result(f"projected selection of {CAMPAIGN:,} datasets (changed types, one context)",
                   diff_ms * CAMPAIGN / 1000, "s", goal=60.0,
                   details={"all_types_projection_s": round(all_ms * CAMPAIGN / 1000, 1)}),
        ]

        work = Path(tmp) / "work"
        work.mkdir()
        copy = work / raws[0].name
        shutil.copyfile(raws[0], copy)
        rf_s, _ = median_time(lambda: refs.assign_bestrefs([copy], new), repeats=7)
        results.append(Result("RF on one HRC raw (headers, lookup, atomic rewrite)", rf_s * 1000, "ms",
                              details={"file_bytes": copy.stat().st_size}))
    return results
