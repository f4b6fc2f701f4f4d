"""Reference-name resolution exactly as hstcal does it (``iref$name`` = getenv("iref") + "name")."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline.core.errors import MissingReference
from pipeline.science.calib.refnames import require_reference, resolve_reference


def test_prefix_is_concatenated_without_a_separator() -> None:
    assert resolve_reference("iref$x_ccd.fits", environ={"iref": "/refs/"}) == Path("/refs/x_ccd.fits")
    # hstcal inserts no '/': without the trailing slash the name runs into the directory
    assert resolve_reference("iref$x_ccd.fits", environ={"iref": "/refs"}) == Path("/refsx_ccd.fits")


def test_unset_variable_keeps_the_literal_without_a_cache() -> None:
    assert resolve_reference("iref$x_ccd.fits", environ={}) == Path("irefx_ccd.fits")


def test_unix_form_absolute_and_na() -> None:
    assert resolve_reference("$jref/a.fits", environ={"jref": "/j"}) == Path("/j/a.fits")
    assert resolve_reference("/abs/a.fits", environ={}) == Path("/abs/a.fits")
    assert resolve_reference("N/A", environ={}) is None
    assert resolve_reference("  ", environ={}) is None


def test_unset_variable_falls_back_on_the_site_cache(tmp_path: Path) -> None:
    site = SimpleNamespace(areas=SimpleNamespace(crds=tmp_path / "crds"))
    got = resolve_reference("iref$x_bia.fits", site=site, environ={})
    assert got == tmp_path / "crds" / "references" / "hst" / "x_bia.fits"
    got = resolve_reference("$iref/x_bia.fits", site=site, environ={})
    assert got == tmp_path / "crds" / "references" / "hst" / "x_bia.fits"
    # an environment variable, when set, wins over the site
    assert resolve_reference("iref$x_bia.fits", site=site, environ={"iref": "/e/"}) == Path("/e/x_bia.fits")


def test_missing_file_names_keyword_and_resolved_path(tmp_path: Path) -> None:
    (tmp_path / "x_ccd.fits").write_bytes(b"")
    header = {"CCDTAB": "iref$x_ccd.fits"}
    assert require_reference(header, "CCDTAB", environ={"iref": f"{tmp_path}/"}) == tmp_path / "x_ccd.fits"
    with pytest.raises(MissingReference) as err:
        require_reference(header, "CCDTAB", environ={"iref": str(tmp_path)})
    msg = err.value.line()
    assert "CCDTAB" in msg and f"{tmp_path}x_ccd.fits" in msg and "trailing '/'" in msg
    assert err.value.keyword == "CCDTAB" and err.value.code == 21


def test_missing_keyword_and_optional() -> None:
    with pytest.raises(MissingReference, match="keyword BPIXTAB is missing"):
        require_reference({}, "BPIXTAB", environ={})
    assert require_reference({}, "SATUFILE", environ={}, optional=True) is None
    assert require_reference({"SATUFILE": "N/A"}, "SATUFILE", environ={}, optional=True) is None
    with pytest.raises(MissingReference, match="a reference file is required"):
        require_reference({"SNKCFILE": "N/A"}, "SNKCFILE", environ={})
