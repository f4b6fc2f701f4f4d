"""Before-calibration checks on WFC3/IR MULTIACCUM raws from the IR simulator."""

from __future__ import annotations

from pathlib import Path

import pytest
from astropy.io import fits

from pipeline.science.checks import bc
from pipeline.simulate.ir import IRExposure, write_exposure
from pipeline.simulate.irmodel import detector_maps
from pipeline.simulate.irrefs import write_ir_references


@pytest.fixture(scope="module")
def ir_raw(module_tmp) -> tuple[Path, dict[str, str]]:
    tmp = module_tmp("bcir")
    maps = detector_maps()
    exp = IRExposure("ibbcir01q", samp_seq="SPARS10", nsamp=5, aperture="IRSUB64")
    refs = write_ir_references(maps, tmp / "iref", darks=[("SPARS10", exp.subtype), ("RAPID", exp.subtype)],
                               filters=["F160W"])
    raw, _ = write_exposure(maps, exp, tmp, refs)
    return raw, {"iref": str(tmp / "iref") + "/", "rapid_dark": "iref$" + refs[f"DARKFILE:RAPID:{exp.subtype}"]}


def _failures(raw: Path, env: dict[str, str]) -> list[tuple[str, str]]:
    return [(f.rule, f.keyword) for f in bc.check_raw(raw, raw.parent / "nocache", environ=env)]


def test_simulated_ir_raw_passes(ir_raw: tuple[Path, dict[str, str]]) -> None:
    raw, env = ir_raw
    assert _failures(raw, env) == []


@pytest.mark.parametrize(("edit", "rule", "keyword"), [
    ({"NSAMP": 6}, "ir-ramp", "NEXTEND"),
    ({"DARKFILE": "rapid"}, "ir-ramp", "DARKFILE"),
    ({"NLINFILE": "N/A"}, "references-present", "NLINFILE"),
    ({"CRREJTAB": "iref$nothere_crr.fits"}, "references-present", "CRREJTAB"),
    ({"SAMP_SEQ": None}, "required-keywords", "SAMP_SEQ"),
])
def test_ir_faults_are_reported(tmp_path: Path, ir_raw: tuple[Path, dict[str, str]], edit: dict, rule: str,
                                keyword: str) -> None:
    raw, env = ir_raw
    copy = tmp_path / raw.name
    with fits.open(raw) as h:
        for key, value in edit.items():
            if value is None:
                del h[0].header[key]
            else:
                h[0].header[key] = env["rapid_dark"] if value == "rapid" else value
        h.writeto(copy)
    found = _failures(copy, {"iref": env["iref"]})
    assert (rule, keyword) in found, found
