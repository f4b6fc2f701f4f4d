"""SIA v2 over the real server, queried with pyvo's own SIA2 client; bad parameters are VOTable errors."""

from __future__ import annotations

import httpx
import pytest

from tests.service_kit import DATASETS, PRIVATE, fill, running

pyvo = pytest.importorskip("pyvo")


@pytest.fixture
def server(site, tmp_path):
    from pipeline.service.app import create_app

    fill(site, tmp_path / "src")
    with running(create_app(site)) as base:
        yield base


def test_pyvo_finds_what_the_catalogue_holds(server):
    from astropy import units as u

    service = pyvo.dal.SIA2Service(f"{server}/sia")
    everything = service.search(maxrec=100).to_table()
    assert sorted(set(everything["obs_id"])) == sorted(DATASETS)
    assert len(everything) == 2 * len(DATASETS)  # raw (calib 1) and flt (calib 2) of each
    for col in ("obs_collection", "dataproduct_type", "calib_level", "s_ra", "s_dec", "s_region", "s_fov", "t_min",
                "t_max", "t_exptime", "em_min", "em_max", "instrument_name", "target_name", "access_url",
                "access_format", "access_estsize", "data_rights", "obs_release_date"):
        assert col in everything.colnames, col

    near = service.search(pos=(49.925 * u.deg, -19.415 * u.deg, 0.05 * u.deg),
                          calib_level=2).to_table()
    assert sorted(near["obs_id"]) == ["ib4606c5q", "ib4606c6q"]
    row = near[near["obs_id"] == "ib4606c5q"][0]
    assert row["calib_level"] == 2 and row["instrument_name"] == "WFC3" and row["target_name"] == "NGC-1300"
    assert row["data_rights"] == "public" and row["obs_release_date"] == "2010-08-11"
    assert row["proposal_id"] == "11360" and row["proposal_pi"] == "Edwin Hubble"
    assert row["em_min"] < 606e-9 < row["em_max"] and row["t_exptime"] == 500.0
    assert row["access_url"].startswith(server) and row["access_format"] == "application/fits"

    red = service.search(band=(1.4e-6, 1.8e-6)).to_table()  # only the F160W (IR) exposure
    assert set(red["obs_id"]) == {"ic1h01a1q"}
    acs = service.search(instrument="ACS").to_table()
    assert set(acs["obs_id"]) == {PRIVATE} and set(acs["data_rights"]) == {"proprietary"}
    from astropy.time import Time

    in_2012 = service.search(time=(Time("2012-01-01"), Time("2012-12-31"))).to_table()
    assert set(in_2012["obs_id"]) == {"ic1h01a1q"}
    target = service.search(target_name="M-83", calib_level=1).to_table()
    assert list(target["obs_id"]) == ["ic1h01a1q"]


def test_overflow_and_maxrec_cap(server):
    service = pyvo.dal.SIA2Service(f"{server}/sia")
    result = service.search(maxrec=3)
    assert len(result) == 3 and result.status[0] == "OVERFLOW"
    with pytest.raises(pyvo.dal.DALQueryError, match="MAXREC=100000 exceeds"):
        service.search(maxrec=100000)


@pytest.mark.parametrize(("query", "says"), [
    ("POS=CIRCLE%20400%200%201", "outside"),
    ("POS=CIRCLE%2010%2010", "is not CIRCLE"),
    ("POS=BOX%201%202%203%204", "is not CIRCLE"),
    ("POS=CIRCLE%20nan%200%201", "NaN"),
    ("POS=" + "CIRCLE%201%201%20" + "9" * 1990, "longer than"),
    ("BAND=5e-7%201e-7", "low is above high"),
    ("BAND=abc", "not a number"),
    ("TIME=55000%2054000", "low is above high"),
    ("MAXREC=-1", "not a whole number"),
    ("CALIB=9", "not a calibration level"),
    ("INSTRUMENT=WFC3'%3B%20DROP%20TABLE%20archive_file%3B--", "not a plain name"),
    ("ID=..%2F..%2Fetc%2Fpasswd", "not a dataset name"),
    ("COLOUR=red", "unknown parameter"),
    ("RESPONSEFORMAT=application/json", "not supported"),
    ("TARGET=%FF%FE", "not valid UTF-8"),
])
def test_bad_parameters_are_votable_errors(server, query, says):
    import io

    from astropy.io.votable import parse

    r = httpx.get(f"{server}/sia/query?{query}")
    assert r.status_code == 400
    vot = parse(io.BytesIO(r.content))
    status = next(i for i in vot.resources[0].infos if i.name == "QUERY_STATUS")
    assert status.value == "ERROR" and says in status.content, status.content
    assert httpx.get(f"{server}/sia/query?ID=ib4606c5q").status_code == 200  # the table survived


def test_vosi_documents(server):
    caps = httpx.get(f"{server}/sia/capabilities")
    assert caps.status_code == 200 and "ivo://ivoa.net/std/SIA#query-2.0" in caps.text
    avail = httpx.get(f"{server}/sia/availability")
    assert "<avail:available>true</avail:available>" in avail.text


def test_post_form_answers_as_get(server):
    """SIA 2.0 (DALI) allows POST with form parameters: pyvo's own POST gives the rows a GET gives."""
    from astropy import units as u
    from pyvo.dal.sia2 import SIA2Query, SIA2Results

    def rows(post: bool, **params) -> list[tuple]:
        query = SIA2Query(f"{server}/sia/query", **params)
        table = SIA2Results(query.execute_votable(post=post)).to_table()
        return sorted(zip(table["obs_id"], table["calib_level"], table["access_url"], strict=True))

    for params in ({"pos": (49.925 * u.deg, -19.415 * u.deg, 0.05 * u.deg), "calib_level": 2},
                   {"instrument": "ACS"}, {"band": (1.4e-6, 1.8e-6)}, {"maxrec": 100}):
        got = rows(True, **params)
        assert got and got == rows(False, **params), params
    with pytest.raises(pyvo.dal.DALQueryError, match="MAXREC=100000 exceeds"):
        SIA2Results(SIA2Query(f"{server}/sia/query", maxrec=100000).execute_votable(post=True))
    # a form body and a query string combine; other bodies are refused with a VOTable error
    both = httpx.post(f"{server}/sia/query?CALIB=1", data={"ID": "ib4606c5q"})
    assert both.status_code == 200 and both.text.count("<TR>") == 1
    for content, kind, status, says in ((b'{"ID": "ib4606c5q"}', "application/json", 415, "POST a form"),
                                        (b"ID=" + b"x" * 70000, "application/x-www-form-urlencoded", 413, "longer"),
                                        (b"TARGET=%FF", "application/x-www-form-urlencoded", 400, "not valid UTF-8")):
        r = httpx.post(f"{server}/sia/query", content=content, headers={"Content-Type": kind})
        assert r.status_code == status and 'value="ERROR"' in r.text and says in r.text, r.text[:300]
