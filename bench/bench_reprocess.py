"""Reprocessing selection over a 100,000-exposure archive catalogue (issue 7: under 60 s).

The catalogue is synthesised (:mod:`tests.catalogue_synth`: real catalogued headers varied over
realistic values, processed with several real 2015 contexts) and inserted straight into the
catalogue table. The selection then runs as ``owl reprocess --dry-run --new-context hst_0349.pmap``
does, each exposure against the context it was processed with.

Correctness rides along: a random sample of the catalogue is looked up the slow way (every type,
whole header, both contexts) and must give exactly the selection's changed types.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from bench.common import Result, peak_rss_mb

EXPOSURES = int(os.environ.get("OWL_BENCH_EXPOSURES", 100_000))
SAMPLE = 400
GOAL_S = 60.0


def run() -> list[Result]:
    from tests.catalogue_synth import NEWEST, REALDATA, full_changes, sample, synthesise

    if not (REALDATA / "crds" / "mappings_hst_2015").is_dir():
        print(f"   skipped: real HST data not found at {REALDATA} (set OWL_REALDATA)")
        return []
    from pipeline.core.config import init_site
    from pipeline.orchestration import reprocess
    from pipeline.science import refs
    from tests.refs_support import real_cache

    os.environ.pop("CRDS_PATH", None)
    with tempfile.TemporaryDirectory() as tmp:
        site = init_site(Path(tmp) / "site")
        real_cache(site.root, REALDATA, NEWEST)
        build_s = synthesise(site, EXPOSURES)
        db_mb = (site.root / "owl.db").stat().st_size / 2**20
        t0 = time.perf_counter()
        selection = reprocess.select_affected(site, NEWEST)
        select_s = time.perf_counter() - t0
        select_rss = peak_rss_mb()
        # the same answer the slow way, on a random sample
        cache = refs.cache_root(site)
        new = refs.load_context(cache, NEWEST)
        chosen = {a.dataset: set(a.types) for a in selection.affected}
        checked = sample(site, SAMPLE)
        wrong = [d for d, ctx, header in checked
                 if full_changes(header, refs.load_context(cache, ctx), new) != chosen.get(d, set())]
        if wrong:
            raise AssertionError(f"selection differs from full lookups for {len(wrong)} of {len(checked)} sampled "
                                 f"exposures, e.g. {wrong[:5]}")
        units = len(selection.units)
        return [Result(f"select affected exposures among {EXPOSURES:,} catalogued ({NEWEST} vs each CRDS_CTX)",
                       select_s, "s", GOAL_S,
                       details={"affected": len(selection.affected), "associations": units,
                                "considered": selection.considered, "lookups": selection.lookups,
                                "spared_by_useafter": selection.spared,
                                "changed_types": selection.changed_types, "catalogue_build_s": round(build_s, 1),
                                "catalogue_mb": round(db_mb), "sample_checked": len(checked),
                                "peak_rss_mb": round(select_rss, 1)}),
                Result("selection rate", EXPOSURES / select_s, "exposures/s", lower_is_better=False)]


if __name__ == "__main__":
    for r in run():
        print(json.dumps(r.as_dict(), indent=2, default=str))
