"""The real ACS/HRC raws through ``owl submit --workflow recalibrate --fits``: every stage complete.

Two things broke on them and are covered here on their own as well: drizzlepac asks on stdin what
to do with an old-style DGEOFILE that has no NPOLFILE (real pre-2009 headers), and a drizzled
single CR-SPLIT member still reads CRCORR = PERFORM (calacs omits it for one image).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from astropy.io import fits

from pipeline.science.checks.ac import Product, check_switches
from pipeline.science.drizzle import _without_old_dgeo

OWL = [str(Path(sys.executable).with_name("owl"))]  # the console script beside this interpreter


def test_old_dgeofile_is_blanked_in_the_scratch_copy_only(tmp_path: Path) -> None:
    copy = tmp_path / "j8bt09jcq_flt.fits"
    fits.HDUList([fits.PrimaryHDU(header=fits.Header([("DGEOFILE", "jref$o8u2214mj_dxy.fits")]))]).writeto(copy)
    said: list[str] = []
    _without_old_dgeo(copy, said.append)
    assert fits.getval(copy, "DGEOFILE") == "N/A" and "not applied" in said[0]
    with fits.open(copy, mode="update") as h:
        h[0].header.update(DGEOFILE="jref$new_dxy.fits", NPOLFILE="jref$x_npl.fits")
    _without_old_dgeo(copy, said.append)
    assert fits.getval(copy, "DGEOFILE") == "jref$new_dxy.fits" and len(said) == 1


def test_a_drz_may_keep_its_members_crcorr_perform(tmp_path: Path) -> None:
    """A drizzled product's primary header is its first input's, and calwf3/calacs leave a CR-SPLIT
    member's CRCORR at PERFORM (alone or in its association): only other switches are held to COMPLETE."""
    def drz(n: int, **switches: str) -> Product:
        path = tmp_path / f"j8bt0{n}jcq_drz.fits"
        h = fits.Header([("CRCORR", "PERFORM"), ("DRIZCORR", "COMPLETE"), ("NDRZIN", n), *switches.items()])
        fits.HDUList([fits.PrimaryHDU(header=h)]).writeto(path)
        return Product.open(path)

    assert list(check_switches(drz(1))) == [] and list(check_switches(drz(2))) == []
    assert [k for k, _ in check_switches(drz(3, FLATCORR="PERFORM"))] == ["FLATCORR"]


@pytest.mark.long  # three real raws through a whole site: make test-long
def test_real_hrc_raw_recalibrates_end_to_end(tmp_path: Path, realdata: Path) -> None:
    env = dict(os.environ, CONDOR_CONFIG="/dev/null", OWL_SITE=str(tmp_path / "site"))

    def owl(*args: str) -> str:
        proc = subprocess.run([*OWL, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc.stdout

    owl("init", str(tmp_path / "site"))
    owl("simulate", "refs", "--size", "subarray", "--instruments", "acs", "--acs-modes")
    raws = tmp_path / "fits"
    raws.mkdir()
    shutil.copyfile(realdata / "acs_hrc_j8bt/raw/j8bt09jcq_raw.fits", raws / "j8bt09jcq_raw.fits")
    owl("submit", "j8bt09jcq", "--workflow", "recalibrate", "--fits", str(raws))
    row = next(line for line in owl("status").splitlines() if line.startswith("j8bt09jcq"))
    letters = row.split()[3:]
    assert letters == ["n", "c", "n", *["c"] * 9], row
