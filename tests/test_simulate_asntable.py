"""Association tables: layout as STScI writes them, strict reading."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from pipeline.core.asntable import build_asn_table, read_asn_table
from pipeline.core.errors import BadInput
from pipeline.core.names import BadName


def test_dither_table_layout(tmp_path):
    hdul = build_asn_table("ib4606060", ["ib4606c5q", "IB4606C6Q"], "DITHER",
                           header={"TARGNAME": "NGC104", "PROPOSID": 11665, "DATE": "2012-01-02"})
    path = tmp_path / "ib4606060_asn.fits"
    hdul.writeto(path)
    with fits.open(path) as f:
        assert f[0].header["FILETYPE"] == "ASN_TABLE"
        assert f[0].header["ASN_ID"] == "ib4606060" and f[0].header["ASN_TAB"] == "ib4606060_asn.fits"
        assert f[0].header["INSTRUME"] == "WFC3" and f[0].header["TARGNAME"] == "NGC104"
        table = f["ASN"]
        assert table.columns["MEMNAME"].format == "14A" and table.columns["MEMPRSNT"].format == "L"
        assert list(table.data["MEMNAME"]) == ["IB4606C5Q", "IB4606C6Q", "IB4606060"]
        assert list(table.data["MEMTYPE"]) == ["EXP-DTH", "EXP-DTH", "PROD-DTH"]
        assert np.all(table.data["MEMPRSNT"])
    asn = read_asn_table(path)
    assert asn.name == "ib4606060" and asn.asn_type == "DITHER"
    assert asn.members == ("ib4606c5q", "ib4606c6q") and asn.products == ("ib4606060",)


def test_crsplit_product_and_missing_member(tmp_path):
    hdul = build_asn_table("j8bt05010", ["j8bt05njq", "j8bt05nkq"], "CR-SPLIT", present={"j8bt05nkq": False})
    assert list(hdul["ASN"].data["MEMTYPE"]) == ["EXP-CRJ", "EXP-CRJ", "PROD-CRJ"]
    assert hdul["ASN"].data["MEMNAME"][-1] == "J8BT05011"
    assert hdul[0].header["ASN_STAT"] == "INCOMPLETE"
    hdul.writeto(tmp_path / "j8bt05010_asn.fits")
    asn = read_asn_table(tmp_path / "j8bt05010_asn.fits")
    assert asn.asn_type == "CR-SPLIT" and asn.present == {"j8bt05njq": True, "j8bt05nkq": False}


@pytest.mark.parametrize(("name", "members"), [
    ("ib4606c5q", ["ib4606c6q"]),  # an exposure is not an association
    ("ib4606060", ["j8bt05njq"]),  # a member of another instrument
    ("ib4606060", ["ib4606../q"]),  # not a dataset name at all
])
def test_bad_names_rejected(name, members):
    with pytest.raises(BadName):
        build_asn_table(name, members, "DITHER")


def test_reader_names_the_problem(tmp_path):
    path = tmp_path / "ib4606060_asn.fits"
    table = fits.BinTableHDU.from_columns([fits.Column(name="MEMNAME", format="14A", array=np.array(["IB4606C5Q"]))],
                                          name="ASN")
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
    with pytest.raises(BadInput, match="lacks column MEMTYPE"):
        read_asn_table(path)
    path.write_bytes(b"not fits")
    with pytest.raises(BadInput, match=r"ib4606060_asn\.fits"):
        read_asn_table(path)
