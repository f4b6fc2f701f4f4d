"""MD by MDRIZTAB: the row STScI's pipeline picks, recorded in the product; in_memory and the fast paths of
``drizzle_exact`` change no pixel."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from pipeline.core.exitcodes import ExitCode
from pipeline.core.names import parse_dataset
from pipeline.core.stage import run_stage
from pipeline.science import drizzle_exact, drizzle_fork, mdriztab
from pipeline.simulate import mdriztab as simtable
from stages.md import Drizzle
from tests.products_data import Field, star_field
from tests.test_drizzle_md import ASN
from tests.test_drizzle_md import _association as flt_association

SHAPE = (160, 200)
TABLE = "95109260i_mdz.fits"


@pytest.fixture(scope="module")
def sky() -> Field:
    return star_field(Field(), 25, SHAPE, seed=5)


def reference_dir(site) -> Path:
    path = site.areas.crds / "references" / "hst"
    path.mkdir(parents=True, exist_ok=True)
    return path


def with_filter_rows(detector: str) -> fits.HDUList:
    """A simulated table plus F606W rows (1 and 4 images) placed after the ANY rows, as CDBS tables mix them."""
    hdul = simtable.mdriz_table("WFC3", detector, "x_mdz.fits")
    data = hdul[1].data
    extra = fits.BinTableHDU.from_columns(hdul[1].columns, nrows=len(data) + 2, name="MDRIZTAB")
    for i in (0, 1):
        extra.data[len(data) + i] = data[1]
        extra.data["filter"][len(data) + i] = "F606W"
        extra.data["numimages"][len(data) + i] = (1, 4)[i]
        extra.data["combine_nhigh"][len(data) + i] = 7 + i  # tell the rows apart
    hdul[1] = extra
    return hdul


@pytest.mark.parametrize("detector", ["UVIS", "IR", "WFC", "HRC", "SBC"])
@pytest.mark.parametrize("n_inputs", [1, 2, 3, 6, 9])
def test_choice_equals_drizzlepacs_mdzhandler(tmp_path, monkeypatch, detector, n_inputs):
    from drizzlepac import mdzhandler

    instrument = "ACS" if detector in ("WFC", "HRC", "SBC") else "WFC3"
    simtable.mdriz_table(instrument, detector, TABLE).writeto(tmp_path / TABLE)
    monkeypatch.setenv("iref", f"{tmp_path}/")
    monkeypatch.setenv("jref", f"{tmp_path}/")
    first = tmp_path / "a_flt.fits"
    keys = {"INSTRUME": instrument, "DETECTOR": detector, "MDRIZTAB": f"{'jref' if instrument == 'ACS' else 'iref'}$"
            f"{TABLE}", **({"FILTER1": "F606W", "FILTER2": "CLEAR2L"} if instrument == "ACS" else {"FILTER": "F606W"})}
    fits.PrimaryHDU(header=fits.Header(list(keys.items()))).writeto(first)
    with contextlib.redirect_stdout(io.StringIO()) as said:
        theirs = mdzhandler.getMdriztabParameters([str(first)] * n_inputs)
    choice = mdriztab.choose(first, n_inputs, tmp_path / "unused-cache")
    assert choice is not None and choice.parameters == theirs
    assert f"read from row {choice.row}." in said.getvalue()


@pytest.mark.parametrize(("filter_name", "n_inputs", "row"), [("F606W", 1, 4), ("F606W", 3, 4), ("F606W", 5, 5),
                                                                ("F814W", 2, 2), ("F814W", 7, 3)])
def test_filter_rows_before_any_rows(tmp_path, monkeypatch, filter_name, n_inputs, row):
    from drizzlepac import mdzhandler

    with_filter_rows("UVIS").writeto(tmp_path / TABLE)
    monkeypatch.setenv("iref", f"{tmp_path}/")
    first = tmp_path / "a_flt.fits"
    fits.PrimaryHDU(header=fits.Header([("INSTRUME", "WFC3"), ("FILTER", filter_name),
                                        ("MDRIZTAB", f"iref${TABLE}")])).writeto(first)
    with contextlib.redirect_stdout(io.StringIO()):
        theirs = mdzhandler.getMdriztabParameters([str(first)] * n_inputs)
    choice = mdriztab.choose(first, n_inputs, tmp_path)
    assert (choice.row, choice.parameters) == (row, theirs)


def test_no_table_named_means_defaults(tmp_path):
    path = tmp_path / "a_flt.fits"
    fits.PrimaryHDU(header=fits.Header([("INSTRUME", "WFC3"), ("MDRIZTAB", "N/A")])).writeto(path)
    assert mdriztab.choose(path, 2, tmp_path) is None


def _association(site, sky: Field, table: str) -> list[Path]:
    """test_drizzle_md's association, its headers naming ``table``."""
    paths = flt_association(site, sky)
    for path in paths:
        fits.setval(path, "MDRIZTAB", value=table)
    return paths


def test_md_runs_the_row_and_records_it(site, sky, monkeypatch):
    monkeypatch.delenv("CRDS_PATH", raising=False)
    simtable.mdriz_table("WFC3", "UVIS", TABLE).writeto(reference_dir(site) / TABLE)
    _association(site, sky, f"iref${TABLE}")
    assert run_stage(Drizzle, [ASN]) == 0
    product = site.work_dir(parse_dataset(ASN)) / f"{ASN}_drz.fits"
    h = fits.getheader(product, 0)
    assert (h["MDRIZTAB"], h["MDZROW"]) == (f"iref${TABLE}", 2)
    history = [str(v) for v in h["HISTORY"]]
    assert f"AstroDrizzle parameters: MDRIZTAB iref${TABLE} row 2" in history
    assert "  row filter ANY, numimages 2; inputs' filter F606W" in history
    assert "  combine_type = 'minmed'" in history and "  final_bits = '336'" in history
    assert "  skymethod = 'match'" in history
    trailer = site.trailer_path(parse_dataset(ASN)).read_text()
    assert f"AstroDrizzle parameters: MDRIZTAB iref${TABLE} row 2" in trailer
    assert "combine_type = 'minmed'" in trailer and "ignored: build" in trailer


def test_md_says_when_there_is_no_table(site, sky):
    _association(site, sky, "N/A")
    assert run_stage(Drizzle, [ASN]) == 0
    trailer = site.trailer_path(parse_dataset(ASN)).read_text()
    assert "no MDRIZTAB named in idn101a1q_flt.fits" in trailer and "drizzlepac's default parameters" in trailer
    h = fits.getheader(site.work_dir(parse_dataset(ASN)) / f"{ASN}_drz.fits", 0)
    assert "MDZROW" not in h and any("defaults (no MDRIZTAB)" in str(v) for v in h["HISTORY"])


def test_named_table_missing_is_a_missing_reference(site, sky, capsys, monkeypatch):
    monkeypatch.delenv("CRDS_PATH", raising=False)
    _association(site, sky, "iref$nosuch00i_mdz.fits")
    assert run_stage(Drizzle, [ASN]) == ExitCode.MISSING_REFERENCE
    assert "MDRIZTAB iref$nosuch00i_mdz.fits not found" in capsys.readouterr().err


#: MD's drizzle in a fresh interpreter, where drizzlepac is imported lean (drizzle_exact.lean_import).
_FRESH_MD = """
import json, sys
from pathlib import Path
from pipeline.core.names import parse_dataset
from pipeline.science import drizzle
*inputs, work, cache = [Path(a) for a in sys.argv[3:]]
product = drizzle.drizzle(inputs, parse_dataset(sys.argv[1]), work, cache=cache, processes=int(sys.argv[2]))
unrelated = ("drizzlepac.tweakreg", "drizzlepac.align", "drizzlepac.runastrodriz", "sklearn", "photutils", "tweakwcs")
print(json.dumps({"path": str(product.path), "fast_paths": product.fast_paths,
                  "loaded": sorted(m for m in unrelated if m in sys.modules)}))
"""
#: AstroDrizzle the plain way, in a fresh interpreter: the full ``import drizzlepac``, nothing replaced,
#: intermediates on disk, nothing cleaned, the MD run's parameters passed by hand.
_PLAIN = """
import contextlib, io, json, os, sys, warnings
os.environ["ASTROMETRY_STEP_CONTROL"] = "OFF"
import drizzlepac
from drizzlepac import astrodrizzle
assert hasattr(drizzlepac, "tweakreg")
output, parameters = sys.argv[1], json.loads(sys.argv[2])
with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
    warnings.simplefilter("ignore")
    astrodrizzle.AstroDrizzle(sys.argv[3:], output=output, updatewcs=False, num_cores=1, build=True, in_memory=False,
                              clean=False, **parameters)
"""


def _python(script: str, *args: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, check=True, cwd=cwd,
                          env=env).stdout


@pytest.mark.parametrize("processes", [1, 2])
def test_product_identical_to_a_plain_astrodrizzle_run(site, sky, tmp_path, monkeypatch, processes):
    """MD (lean drizzlepac import, in_memory, on copies, MDRIZTAB row, the driz_cr fast paths, the per-image
    steps in 1 or 2 processes) gives the same pixels as AstroDrizzle run the plain way with the same
    parameters; each in a fresh process."""
    monkeypatch.delenv("CRDS_PATH", raising=False)
    simtable.mdriz_table("WFC3", "UVIS", TABLE).writeto(reference_dir(site) / TABLE)
    inputs = _association(site, sky, f"iref${TABLE}")
    plain = tmp_path / "plain"
    plain.mkdir()
    for p in inputs:
        shutil.copy2(p, plain / p.name)
    work = site.work_dir(parse_dataset(ASN))
    said = json.loads(_python(_FRESH_MD, ASN, str(processes), *map(str, inputs), str(work), str(site.areas.crds),
                              cwd=tmp_path).strip().splitlines()[-1])
    if drizzle_exact.drizzlepac_version() == drizzle_exact.CHECKED_DRIZZLEPAC:  # what is compared
        forked = (["separate drizzle, driz_cr: images in 2 processes", drizzle_fork.FINAL_CHIPS]
                  if processes == 2 else [])
        assert said["fast_paths"] == ["quickDeriv.qderiv", "drizCR.signal.convolve2d", "util.print_pkg_versions",
                                      *forked]
        assert said["loaded"] == []
    params, _ = mdriztab.split_operational(mdriztab.choose(inputs[0], len(inputs), site.areas.crds).parameters)
    _python(_PLAIN, ASN, json.dumps(params), *(p.name for p in inputs), cwd=plain)
    assert any(plain.glob("*_single_sci.fits")) and any(plain.glob("*_med.fits"))  # the plain run wrote them
    with fits.open(said["path"]) as a, fits.open(plain / f"{ASN}_drz.fits") as b:
        for ext in ("SCI", "WHT", "CTX"):
            assert a[ext].data.shape == b[ext].data.shape
            assert np.array_equal(a[ext].data, b[ext].data, equal_nan=True), ext
            assert np.count_nonzero(a[ext].data) > 0


def _cte_kernel(ctegrow: int, direction: int) -> np.ndarray:
    """drizCR's tail kernel for ``driz_cr_ctegrow`` and a readout direction, built as drizCR builds it."""
    kernel = np.zeros((2 * ctegrow + 1, 2 * ctegrow + 1))
    if direction == 1:
        kernel[0:ctegrow, ctegrow] = 1
    else:
        kernel[ctegrow + 1: 2 * ctegrow + 1, ctegrow] = 1
    return kernel


@pytest.mark.parametrize("shape", [(7, 5), (160, 200), (301, 97)])
def test_fast_convolve2d_equals_scipys_on_drizcr_masks(shape):
    """Every kernel drizCR convolves its boolean CR masks with: same dtype, same values; others go to scipy."""
    from scipy import signal

    rng = np.random.default_rng(shape[0])
    mask = rng.random(shape) < 0.8
    kernels = [np.ones((3, 3), dtype=np.uint16), np.ones((1, 1), dtype=np.uint16), np.ones((5, 5), dtype=np.uint16),
               np.zeros((1, 1))] + [_cte_kernel(c, d) for c in (1, 2, 3) for d in (1, -1)]
    for kernel in kernels:
        theirs = signal.convolve2d(mask, kernel, boundary="symm", mode="same")
        ours = drizzle_exact.convolve2d(mask, kernel, boundary="symm", mode="same")
        assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs), kernel.shape
    floats = rng.random(shape)  # not whole numbers: scipy's own result
    box = np.ones((3, 3)) / 9.0
    assert np.array_equal(drizzle_exact.convolve2d(floats, box, boundary="symm", mode="same"),
                          signal.convolve2d(floats, box, boundary="symm", mode="same"))


def test_fast_qderiv_is_bit_identical_including_nan_and_inf():
    from drizzlepac import quickDeriv

    rng = np.random.default_rng(3)
    image = rng.normal(100.0, 40.0, (203, 157)).astype(np.float32)
    image[5, 5], image[0, 0], image[100, 7], image[-1, -1] = np.nan, np.inf, -np.inf, -0.0
    ours, theirs = drizzle_exact.qderiv(image), quickDeriv.qderiv(image)
    assert ours.dtype == theirs.dtype == np.float32
    assert np.array_equal(ours.view(np.uint32), theirs.view(np.uint32))


#: drizzlepac's version lines, then ours, in one fresh interpreter where neither package was imported yet.
_VERSION_LINES = """
import contextlib, io, json, sys
from pipeline.science import drizzle_exact
drizzle_exact.lean_import("astrodrizzle")
from drizzlepac import util
extra = sys.argv[1:]
with contextlib.redirect_stdout(io.StringIO()) as ours:
    drizzle_exact.print_pkg_versions(packages=extra)
imported = sorted(m for m in ("photutils", "tweakwcs") if m in sys.modules)
with contextlib.redirect_stdout(io.StringIO()) as theirs:
    util.print_pkg_versions(packages=extra)
print(json.dumps({"ours": ours.getvalue(), "theirs": theirs.getvalue(), "imported": imported}))
"""


def test_version_lines_equal_drizzlepacs_without_importing_them(tmp_path):
    """Same text as ``util.print_pkg_versions`` (including a missing package and one without a version), and
    tweakwcs and photutils are not imported by ours."""
    said = json.loads(_python(_VERSION_LINES, "no_such_package_owl", "os", cwd=tmp_path).strip().splitlines()[-1])
    assert said["imported"] == []
    assert said["ours"] == said["theirs"]
    assert "photutils Version -> " in said["ours"] and "no_such_package_owl not found in path..." in said["ours"]
    assert "os No version defined." in said["ours"]


def test_fast_paths_only_for_the_checked_drizzlepac(monkeypatch):
    from drizzlepac import drizCR, quickDeriv

    original = quickDeriv.qderiv
    with drizzle_exact.exact_fast_paths() as used:
        assert bool(used) == (drizzle_exact.drizzlepac_version() == drizzle_exact.CHECKED_DRIZZLEPAC)
        if used:
            assert quickDeriv.qderiv is drizzle_exact.qderiv and drizCR.signal.convolve2d is drizzle_exact.convolve2d
    assert quickDeriv.qderiv is original
    monkeypatch.setattr(drizzle_exact, "CHECKED_DRIZZLEPAC", "0.0.0")
    with drizzle_exact.exact_fast_paths() as used:
        assert used == () and quickDeriv.qderiv is original
