"""What the non-MD stages import for their work (issue 15): libraries a node does not use stay unimported.

Each fresh stage process pays every import again; the figures are in docs/benchmarks.md ("Non-MD nodes
made cheaper"). These tests keep the cut imports cut, in a fresh interpreter, and hold the cheaper
association table to astropy's own bytes.
"""

from __future__ import annotations

import io
import mmap

import numpy as np
from astropy.io import fits

from pipeline.core.asntable import build_asn_table
from tests.test_cli_startup import heavy_modules_after


def test_association_table_is_built_without_astropy_table():
    code = ("from pipeline.core.asntable import build_asn_table\n"
            "build_asn_table('ib4606060', ['ib4606c5q', 'ib4606c6q'], 'DITHER')")
    # heavy_modules_after reports top-level packages: astropy.table itself is asked for here
    probe = code + "\nimport sys\nassert 'astropy.table' not in sys.modules, 'astropy.table imported'"
    assert heavy_modules_after(probe, ("asdf", "asdf_astropy")) == []


def test_association_table_bytes_are_astropys(tmp_path):
    """The same bytes as ``BinTableHDU.from_columns`` writes for the same columns and cards (astropy 8
    writes EXTNAME after TFIELDS, 7 after the column cards: the table header's cards are compared as
    a set, every other byte as it is)."""
    ours = build_asn_table("j8bt05010", ["j8bt05njq", "j8bt05nkq"], "CR-SPLIT", present={"j8bt05nkq": False})
    table = ours["ASN"]
    columns = [fits.Column(name=c.name, format=c.format, disp=c.disp, array=np.array(table.data[c.name]))
               for c in table.columns]
    theirs = fits.BinTableHDU.from_columns(columns, name="ASN")
    for key in ("EXTVER", "INHERIT", "ROOTNAME", "EXPNAME"):
        theirs.header[key] = (table.header[key], table.header.comments[key])
    a, b = io.BytesIO(), io.BytesIO()
    ours.writeto(a)
    fits.HDUList([fits.PrimaryHDU(header=ours[0].header), theirs]).writeto(b)
    mine, astropys = a.getvalue(), b.getvalue()
    with fits.open(io.BytesIO(mine)) as x, fits.open(io.BytesIO(astropys)) as y:
        assert sorted(c.image for c in x["ASN"].header.cards) == sorted(c.image for c in y["ASN"].header.cards)
        header, data = x["ASN"].fileinfo()["hdrLoc"], x["ASN"].fileinfo()["datLoc"]
        assert (y["ASN"].fileinfo()["hdrLoc"], y["ASN"].fileinfo()["datLoc"]) == (header, data)
    assert mine[:header] == astropys[:header] and mine[data:] == astropys[data:]
    assert list(ours["ASN"].data["MEMPRSNT"]) == [True, False, True]


def test_preview_module_leaves_scipy_for_photon_counting_images():
    assert heavy_modules_after("import pipeline.science.preview", ("scipy",)) == []


def _flt(path, dq_value: int):
    from astropy.io import fits as f

    primary = f.PrimaryHDU()
    primary.header["INSTRUME"], primary.header["DETECTOR"] = "WFC3", "UVIS"
    sci = f.ImageHDU(np.ones((8, 10), np.float32), name="SCI", ver=1)
    sci.header["SDQFLAGS"] = 65535  # wider than the int16 DQ array: the check widens once
    dq = np.zeros((8, 10), np.int16)
    dq[:4] = dq_value
    f.HDUList([primary, sci, f.ImageHDU(np.ones((8, 10), np.float32), name="ERR", ver=1),
               f.ImageHDU(dq, name="DQ", ver=1)]).writeto(path)
    return path


def test_ac_reads_pixels_from_the_map_without_a_copy(tmp_path):
    from pipeline.science.checks.ac import Product, check_flagged_fraction

    product = Product.open(_flt(tmp_path / "ixop01abq_flt.fits", 4), max_flagged_fraction=0.25)
    base = product.data(1)
    while isinstance(base, np.ndarray):
        base = base.base
    assert isinstance(base, mmap.mmap)  # a view of the file's map, not a copy
    (failure,) = check_flagged_fraction(product)
    assert failure[0] == "DQ,1" and "50.0% of pixels" in failure[1]


def test_archiving_nodes_ingest_without_sqlalchemy(site, tmp_path):
    """INGEST, INGEST_SCI, INGEST_PVW, INGEST_FITS and CL archive through the DB-API layer; SQLAlchemy
    (~0.13 s of every such node) is imported only to create the catalogue, which ``owl init`` does, so
    not even a new site's first ingest imports it."""
    from click.testing import CliRunner

    from pipeline.archive.store import Archive
    from pipeline.cli import main

    assert CliRunner().invoke(main, ["init", str(site.root)]).exit_code == 0
    trailer = tmp_path / "idn101a1q_trl.txt"
    trailer.write_text("a trailer")
    code = ("from pathlib import Path\nfrom pipeline.core.config import load_site\n"
            "from pipeline.archive.ingest import ArchiveIngest\n"
            f"archive = ArchiveIngest(load_site(Path({str(site.root)!r})))\n"
            f"assert archive.ingest('idn101a1q', [(Path({str(trailer)!r}), 'trl')]) == 1\n"
            "assert [f.kind for f in archive.files('idn101a1q')] == ['trl']")
    assert heavy_modules_after(code, ("sqlalchemy",)) == []
    assert set(Archive(site).metadata("idn101a1q").values()) == {None}   # a trailer names no field
    assert [f.name for f in Archive(site).files("idn101a1q", 1)] == [trailer.name]


def test_previews_lay_out_chips_without_astropy_wcs(tmp_path):
    """PVW places the chips on the sky with pipeline.science.tansip: astropy.wcs (with astropy.coordinates,
    units and table, ~0.2 s) stays unimported."""
    from tests.products_data import Field, star_field, write_flt

    flt = write_flt(tmp_path / "idn101a1q_flt.fits", star_field(Field(), 10, (60, 80)), shape=(60, 80))
    code = (f"from pathlib import Path\nfrom pipeline.science.preview import make_previews\n"
            f"make_previews(Path({str(flt)!r}), Path({str(tmp_path / 'out')!r}))\n"
            "import sys\nassert 'astropy.wcs' not in sys.modules, 'astropy.wcs imported'")
    assert heavy_modules_after(code, ("scipy",)) == []
    assert (tmp_path / "out" / "idn101a1q_flt.jpg").is_file()
