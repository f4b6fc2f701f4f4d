import pytest

from pipeline.core.names import BadName, DatasetName, file_name, parse_dataset, rootname_of, split_file_name


@pytest.mark.parametrize(
    ("text", "instrument", "data_id", "kind"),
    [
        ("j8bt05njq", "acs", "acs", "exposure"),
        ("IB8T01NAQ", "wfc3", "wf3", "exposure"),
        ("ldfd01vnq", "cos", "cos", "exposure"),
        ("j9cv58020", "acs", "acs", "association"),
        ("j8cb010b0", "acs", "acs", "association"),
        ("n4rk05011", "nicmos", "nic", "product"),
        ("j8cb010b1", "acs", "acs", "product"),
        ("u2440101t", "wfpc2", "wp2", "exposure"),
        ("o6h201010", "stis", "sti", "association"),
    ],
)
def test_valid_names(text, instrument, data_id, kind):
    ds = parse_dataset(text)
    assert ds.name == text.lower()
    assert ds.instrument == instrument and ds.data_id == data_id
    assert {"exposure": ds.is_exposure, "association": ds.is_association, "product": ds.is_product}[kind]


def test_fields():
    ds = parse_dataset("j9cv58020")
    assert (ds.instrument_letter, ds.program, ds.obset, ds.obsnum, ds.transmission) == ("j", "9cv", "58", "02", "0")
    assert ds.product().name == "j9cv58021"
    assert ds.file("asn") == "j9cv58020_asn.fits"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("j8bt05nj", "9 characters"),
        ("j8bt05njqq", "9 characters"),
        ("../etc/pa", "9 characters"),
        ("j8bt/5njq", "9 characters"),
        ("a8bt05njq", "unknown instrument letter 'A'"),
        ("j8bt05nja", "transmission"),
        ("j8bt05n10", "7th character must be '0'"),
        ("", "9 characters"),
        ("j8bt05nj\n", "9 characters"),
    ],
)
def test_bad_names(text, fragment):
    with pytest.raises(BadName, match=fragment.replace("(", r"\(")):
        parse_dataset(text)


def test_direct_construction_validates():
    with pytest.raises(BadName):
        DatasetName("J8BT05NJQ")  # only parse_dataset folds case


def test_file_names():
    assert file_name("j8bt05njq", "raw") == "j8bt05njq_raw.fits"
    assert file_name(parse_dataset("j8bt05njq"), "thumb", "jpg") == "j8bt05njq_thumb.jpg"
    with pytest.raises(BadName):
        file_name("j8bt05njq", "../raw")
    assert split_file_name("/x/y/LDFD01VNQ_rawtag_a.fits.gz")[1:] == ("rawtag_a", "fits.gz")
    assert rootname_of("j8bt05njq_flt.fits").name == "j8bt05njq"
    with pytest.raises(BadName):
        rootname_of("notes.txt")
