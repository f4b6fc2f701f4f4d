"""PCTECORR on WFC3/UVIS subarrays: calwf3's full-frame context (paste at the LTV corner, mask,
prescan bias, BIACFILE cut with the virtual-column rules), and the comparison with the real
``calwf3.e`` on a simulated CTE-trailed subarray when hstcal is installed."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from pipeline.core.asntable import read_asn_table
from pipeline.core.config import load_instrument_defaults, with_pctecorr
from pipeline.core.errors import Unsupported
from pipeline.science import refs
from pipeline.science.calib.compare import compare_input
from pipeline.science.calib.cte import bias
from pipeline.science.calib.cte.raz import AMP_COLS, COLS, ROWS
from pipeline.science.calib.cte.uvis import _biac_columns, _paste_corner
from pipeline.science.calib.imageio import Imset
from pipeline.simulate.crdscache import build_reference_cache
from pipeline.simulate.downlink import iter_downlink, write_fits

CALWF3 = shutil.which("calwf3.e")  # real hstcal only where it is installed


def _imset(ltv1: float, ltv2: float, chip: int, shape: tuple[int, int] = (512, 512)) -> Imset:
    h = fits.Header({"LTV1": ltv1, "LTV2": ltv2, "CCDCHIP": chip})
    z = np.zeros(shape, np.float32)
    return Imset(1, z, z, z.astype(np.uint16), h, fits.Header(), fits.Header())


class _Ctx:
    path = Path("x_raw.fits")


def test_biac_columns_follow_docte_bias() -> None:
    assert list(_biac_columns(0, 3)) == [0, 1, 2]
    assert list(_biac_columns(2072, 2)) == [2132, 2133]          # from x >= 2072: past the virtual columns
    assert list(_biac_columns(2070, 5)) == [2070, 2071, 2072, 2133, 2134]  # straddling: from 2073 - x0 on


def test_paste_corner_and_the_physical_prescan_rule() -> None:
    assert _paste_corner(_imset(25.0, 0.0, 2), 2, _Ctx()) == (0, 0)       # amp C corner, prescan included
    assert _paste_corner(_imset(-3609.0, -1539.0, 1), 1, _Ctx()) == (3694, 1558)  # amp B corner: ends at 4206
    with pytest.raises(Unsupported, match="physical overscan"):
        _paste_corner(_imset(-1000.0, 0.0, 2), 2, _Ctx())                # mid-chip: no prescan pixels


def test_prescan_bias_reads_only_the_masked_prescan_of_each_amp() -> None:
    raz = np.full((ROWS, COLS), 100.0, np.float32)
    mask = np.zeros((ROWS, COLS), bool)
    mask[:512, :512] = True                        # a corner subarray of amp C
    raz[:512, 5:25] = 7.0
    assert bias.prescan_bias(raz, mask) == [7.0, 0.0, 0.0, 0.0]
    mask[:, AMP_COLS:AMP_COLS + 30] = True
    assert bias.prescan_bias(raz, mask)[1] == 100.0


def cte_downlink(tmp_path: Path, monkeypatch, instrument: str, size: str, *, seed: int,
                 associations: int = 2) -> tuple[Path, dict[str, str]]:
    """A CRDS cache of ``size`` and a downlink of trailed raws (PCTECORR = PERFORM for the
    instrument's CTE detector) with best references assigned; the raws' folder and the environment
    that names the references (iref/jref)."""
    crds, raws = tmp_path / "crds", tmp_path / "raws"
    build_reference_cache(crds, [instrument], size=size)
    cte_on = with_pctecorr(load_instrument_defaults(), ["UVIS" if instrument == "wfc3" else "WFC"])
    write_fits(iter_downlink(seed, size, associations, [instrument], defaults=cte_on), raws)
    monkeypatch.setenv("CRDS_PATH", str(crds))
    refs.assign_bestrefs(sorted(raws.glob("*_raw.fits")), refs.load_context(crds))
    prefix = "iref" if instrument == "wfc3" else "jref"
    return raws, dict(os.environ, **{prefix: f"{crds / 'references' / 'hst'}/"})


def engines_agree(item: Path, expected: set[str], work: Path, env: dict[str, str],
                  keys: tuple[str, ...]) -> list[tuple[fits.Header, fits.Header]]:
    """``compare_input`` on ``item``: both engines made exactly ``expected``, every extension
    identical, ``keys`` equal in the CTE products; their (built-in, hstcal) primary headers."""
    result = compare_input(item, work, environ=env)
    assert {d.product for d in result.diffs} == expected
    assert result.ok(0.0), [d.line() for d in result.diffs if not d.within(0.0)]
    headers = []
    for name in sorted(n for n in expected if n.endswith(("_flc.fits", "_crc.fits"))):
        a, b = fits.getheader(work / "builtin" / name), fits.getheader(work / "hstcal" / name)
        for key in keys:
            assert a[key] == b[key], (name, key)
        headers.append((a, b))
    return headers


@pytest.mark.slow
@pytest.mark.skipif(CALWF3 is None,
                    reason="calwf3.e (hstcal) not installed")
def test_real_calwf3_agrees_bit_for_bit_on_trailed_uvis_subarrays(tmp_path: Path, monkeypatch) -> None:
    """A single trailed exposure (_flt, _flc) and a CR-SPLIT pair (_crj, _crc and both members' _flt
    and _flc): every product bit-identical, the CTE keywords equal."""
    raws, env = cte_downlink(tmp_path, monkeypatch, "wfc3", "subarray", seed=6)
    (crsplit,) = [a for a in raws.glob("*_asn.fits") if read_asn_table(a).asn_type == "CR-SPLIT"]
    dithered = sorted(m for a in raws.glob("*_asn.fits") if a != crsplit for m in read_asn_table(a).members)
    single = raws / f"{dithered[0]}_raw.fits"
    product = read_asn_table(crsplit).products[0]
    members = read_asn_table(crsplit).members
    for item, expected in ((single, {f"{dithered[0]}_{s}.fits" for s in ("flt", "flc")}),
                           (crsplit, {f"{product}_crj.fits", f"{product}_crc.fits",
                                      *(f"{m}_{s}.fits" for m in members for s in ("flt", "flc"))})):
        work = tmp_path / "work" / item.name[:9]
        for a, b in engines_agree(item, expected, work, env,
                                  ("PCTECORR", "CTE_NAME", "CTE_VER", "PCTENFOR", "PCTENPAR", "PCTEFRAC", "DRKCFILE")):
            assert np.float32(a["PCTERNOI"]) == np.float32(b["PCTERNOI"]), a["FILENAME"]
