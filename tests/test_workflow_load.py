"""Workflows as data: the shipped files load into one graph type; bad files fail with one line naming them."""

from __future__ import annotations

import textwrap

import pytest

from pipeline.core.config import load_site
from pipeline.core.exitcodes import DAGMAN_FATAL
from pipeline.orchestration.workflow import WorkflowError, load_workflow, runnable_subset
from tests.orchkit import KIT_WORKFLOW

CHAIN = ["RF", "BC", "CA", "MD", "AC", "INGEST_SCI", "PVW", "INGEST_PVW", "CL"]


@pytest.mark.parametrize(("name", "first", "unused"), [
    ("new_science", ["dan_receipt", "INGEST", "2FITS"], []),
    ("reprocess", ["2FITS"], ["DR", "IN"]),
    ("recalibrate", ["INGEST"], ["DR", "2F"]),
])
def test_shipped_workflows(name, first, unused):
    wf = load_workflow(name)
    assert list(wf.stages) == first + CHAIN
    assert wf.unused_columns == unused
    assert wf.retry_unless_exit == DAGMAN_FATAL
    assert wf.stage("CA").scope == "exposure" and wf.stage("CA").category == "ca"
    assert wf.stage("MD").request_memory == 4096 and wf.stage("RF").request_memory == 1024
    assert wf.stage("CL").after == ("INGEST_SCI", "INGEST_PVW")
    assert wf.descendants("PVW") == ["PVW", "INGEST_PVW", "CL"]
    assert wf.ref == name


def test_expand_fans_out_exposure_stages(site):
    wf = load_workflow("new_science")
    g = wf.expand("j9cv58020", ["j9cv58acq", "j9cv58abq"])
    assert list(g.nodes)[:6] == ["INGEST", "2FITS", "RF", "BC", "CA_j9cv58abq", "CA_j9cv58acq"]
    assert "dan_receipt" not in g.nodes  # a trigger stage runs before the DAG
    assert g.nodes["INGEST"].parents == ()
    assert g.nodes["CA_j9cv58acq"].dataset == "j9cv58acq"
    assert g.nodes["MD"].parents == ("CA_j9cv58abq", "CA_j9cv58acq")
    singleton = wf.expand("j9cv01abq", [])
    assert [n for n in singleton.nodes if n.startswith("CA")] == ["CA_j9cv01abq"]


def test_priorities_and_throttles_come_from_the_site(site):
    wf = load_workflow("reprocess")
    tuned = load_site(site.root, overrides={"priorities.reprocess": 7, "throttles.max_jobs": {"ca": 9}})
    assert wf.priority(site) == 10 and wf.priority(tuned) == 7
    assert wf.max_jobs(site) == {"ca": 4, "ingest": 2, "md": 1}
    assert wf.max_jobs(tuned) == {"ca": 9, "ingest": 2, "md": 1}  # the file's defaults fill the rest


def _write(tmp_path, body: str):
    path = tmp_path / "bad.toml"
    path.write_text(textwrap.dedent(body))
    return path


GOOD_HEAD = """\
    name = "w"
    priority = "new_science"
    start = "A"
    [categories]
    ca = 2
    [stages.A]
    column = "IN"
    executable = "owl-a"
"""


@pytest.mark.parametrize(("extra", "message"), [
    ('[stages.B]\ncolumn = "RF"\nexecutable = "b"\nafter = ["Z"]\n', "stages.B.after: unknown stage 'Z'"),
    ('[stages.B]\ncolumn = "RF"\nexecutable = "b"\nafter = ["A", "C"]\n'
     '[stages.C]\ncolumn = "BC"\nexecutable = "c"\nafter = ["B"]\n', "cycle: B -> C -> B"),
    ('[stages.B]\ncolumn = "RF"\nexecutable = "b"\n', "B unreachable from start stage 'A'"),
    ('[stages.B]\ncolumn = "QQ"\nexecutable = "b"\nafter = ["A"]\n', "unknown OSF column 'QQ'"),
    ('[stages.B]\ncolumn = "IN"\nexecutable = "b"\nafter = ["A"]\n', "both move OSF column IN"),
    ('[stages.B]\ncolumn = "RF"\nexecutable = "b"\nafter = ["A"]\ncategory = "md"\n', "unknown category 'md'"),
    ('[stages.B]\ncolumn = "RF"\nexecutable = "b"\nafter = ["A"]\nrequest_memory = "lots"\n',
     "stages.B.request_memory: size 'lots'"),
    ('[stages.B]\ncolumn = "RF"\nexecutable = "b"\nafter = ["A"]\nretrys = 3\n', "stages.B.retrys: Extra inputs"),
    ('[stages.B]\ncolumn = "RF"\nexecutable = "b"\nafter = ["A"]\narguments = ["a b"]\n', "one word"),
])
def test_bad_workflows_fail_clearly(tmp_path, extra, message):
    path = _write(tmp_path, GOOD_HEAD + extra)
    with pytest.raises(WorkflowError) as err:
        load_workflow(path)
    assert str(path) in err.value.line() and message in err.value.line()


@pytest.mark.parametrize(("head_change", "message"), [
    (('start = "A"', 'start = "Q"'), "start: unknown stage 'Q'"),
    (('priority = "new_science"', 'priority = "urgent"'), "'urgent' is not a key of the site [priorities]"),
    (('name = "w"', 'name = "w"\nretry_unless_exit = 1'), "every fatal exit as 100"),
    (('[categories]', '[categories'), "invalid TOML"),
])
def test_bad_workflow_headers(tmp_path, head_change, message):
    path = _write(tmp_path, GOOD_HEAD.replace(*head_change))
    with pytest.raises(WorkflowError, match=r"bad\.toml") as err:
        load_workflow(path)
    assert message in err.value.line()


def test_unknown_workflow_name_lists_the_shipped_ones():
    with pytest.raises(WorkflowError, match="new_science, recalibrate, reprocess"):
        load_workflow("nightly")


def test_runnable_subset_validates_and_keeps_order(tmp_path):
    wf = load_workflow("new_science")
    text = runnable_subset(wf, ["dan_receipt", "INGEST", "2FITS", "RF", "CA", "MD"], "cut for a test")
    path = tmp_path / "cut.toml"
    path.write_text(text)
    cut = load_workflow(path)
    assert list(cut.stages) == ["dan_receipt", "INGEST", "2FITS", "RF"]  # CA needs BC, which is missing
    assert cut.stage("INGEST").category == "ingest" and cut.categories == {"ingest": 2}
    assert cut.ref == str(path)


def test_kit_workflow_for_executor_tests_is_valid():
    kit = load_workflow(KIT_WORKFLOW)
    assert kit.ref == str(KIT_WORKFLOW)
    assert [s.name for s in kit.node_stages] == ["INGEST", "RF", "CA", "MD", "PVW", "CL"]
