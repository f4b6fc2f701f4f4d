"""Best references for a real WFC3/IR header under the real 2015 context (hst_0349.pmap)."""

from __future__ import annotations

import pytest
from astropy.io import fits

from pipeline.science import refs
from tests.refs_support import REAL_CONTEXT, real_cache

SAMPLE = "headers_only_samples/hst_11665_06_wfc3_ir_f110w_ib4606cp_flt_sample.fits"
#: IR references that did not change between the 2015 context and the archive's later reprocessing.
STABLE = ("ccdtab", "oscntab", "nlinfile", "crrejtab", "idctab")


def test_real_ir_header_gets_every_ir_reference(realdata, tmp_path, monkeypatch):
    for key in ("CRDS_PATH", "CRDS_CONTEXT", "CRDS_MODE", "CRDS_SERVER_URL"):
        monkeypatch.delenv(key, raising=False)
    path = realdata / SAMPLE
    if not path.is_file():
        pytest.skip("real IR header sample not available")
    ctx = refs.load_context(real_cache(tmp_path, realdata), REAL_CONTEXT)
    lookup = ctx.lookup(refs.dataset_parameters(path))
    header = fits.getheader(path)
    assert lookup.instrument == "WFC3" and not lookup.failures
    for reftype in STABLE:
        assert f"iref${lookup.refs[reftype]}" == header[reftype.upper()], reftype
    for reftype, suffix in (("darkfile", "_drk.fits"), ("pfltfile", "_pfl.fits"), ("bpixtab", "_bpx.fits"),
                            ("imphttab", "_imp.fits")):
        assert lookup.refs[reftype].endswith(suffix), reftype
    assert lookup.refs["biasfile"] == refs.NA and lookup.refs["flshfile"] == refs.NA   # UVIS-only types
