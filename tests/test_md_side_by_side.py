"""MD's _drz and _drc drizzled side by side on a 2-CPU node: the same products, warnings and first error
as one after the other."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from astropy.io import fits

from pipeline.core import usage
from pipeline.core.errors import BadInput
from pipeline.core.names import parse_dataset
from pipeline.science import drizzle_sets
from pipeline.science.drizzle import association_inputs
from tests.test_drizzle_md import (
    ASN,
    MEMBERS,
    sky,  # noqa: F401  (the module's star field fixture)
)
from tests.test_drizzle_md import _association as association

ONE, TWO = {drizzle_sets.PROCESSES_VARIABLE: "1"}, {drizzle_sets.PROCESSES_VARIABLE: "2"}


@pytest.mark.parametrize(("environ", "expected"), [(ONE, 1), (TWO, 2), ({"OMP_NUM_THREADS": "2"}, 2),
                                                    ({drizzle_sets.PROCESSES_VARIABLE: "1", "OMP_NUM_THREADS": "2"}, 1),
                                                    ({"OMP_NUM_THREADS": "x"}, None)])
def test_processes_from_the_environment(environ, expected):
    assert drizzle_sets.processes(environ) == (expected or drizzle_sets.processes({}))


def test_side_by_side_products_equal_sequential_ones(site, sky):  # noqa: F811
    association(site, sky, ("flt", "flc"))
    work = site.work_dir(parse_dataset(ASN))
    alone = work.parent / "alone"
    shutil.copytree(work, alone)
    sets = association_inputs(work, [parse_dataset(m) for m in MEMBERS])
    said: list[str] = []
    alone_peak = usage.peak_rss_mb()
    products = drizzle_sets.drizzle_sets(sets, parse_dataset(ASN), work, log=said.append, environ=TWO)
    assert [p.path.name for p in products] == [f"{ASN}_drz.fits", f"{ASN}_drc.fits"]
    assert usage.peak_rss_mb() > alone_peak  # the two processes' peaks, summed, are the node's
    sequential = drizzle_sets.drizzle_sets(association_inputs(alone, [parse_dataset(m) for m in MEMBERS]),
                                           parse_dataset(ASN), alone, environ=ONE)
    for ours, theirs in zip(products, sequential, strict=True):
        assert ours.inputs == theirs.inputs and ours.fast_paths == theirs.fast_paths
        with fits.open(ours.path) as a, fits.open(theirs.path) as b:
            for ext in ("SCI", "WHT", "CTX"):
                assert np.array_equal(a[ext].data, b[ext].data, equal_nan=True), (ours.path.name, ext)


def test_first_sets_error_wins_and_warnings_are_replayed(site, sky):  # noqa: F811
    paths = association(site, sky, ("flt", "flc"))
    work = site.work_dir(parse_dataset(ASN))
    bad_flc = next(p for p in paths if p.name == f"{MEMBERS[1]}_flc.fits")
    fits.setval(bad_flc, "EXPTIME", value=0.0)
    sets = association_inputs(work, [parse_dataset(m) for m in MEMBERS])
    with pytest.raises(BadInput, match=f"{bad_flc.name}: EXPTIME = 0.0") as caught:
        drizzle_sets.drizzle_sets(sets, parse_dataset(ASN), work, environ=TWO)
    assert caught.value.path == bad_flc  # the stage wrapper quarantines it: the path survives the process
    bad_flt = next(p for p in paths if p.name == f"{MEMBERS[0]}_flt.fits")
    fits.setval(bad_flt, "EXPTIME", value=0.0)
    with pytest.raises(BadInput, match=f"{bad_flt.name}: EXPTIME"):  # flt comes first, as in a sequential loop
        drizzle_sets.drizzle_sets(sets, parse_dataset(ASN), work, environ=TWO)
