"""The typed loader behind the site configuration and the DAN: pydantic's conversions and error lines,
without pydantic on the start-up path."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from pipeline.core.config import Executor, SiteFile
from pipeline.core.errors import BadInput
from pipeline.core.typedload import Invalid, load
from pipeline.science.telemetry.dan import AssociationEntry, Dan, PodEntry, parse_dan


def test_lax_conversions_as_environment_overrides_need_them():
    site = load(SiteFile, {"executor": {"workers": " 4 ", "kind": "condor"}, "console": {"public_read": "yes"},
                           "database": {"busy_timeout": "1.5"}, "throttles": {"max_jobs": {"ca": "3"}}})
    assert site.executor == Executor(kind="condor", workers=4)
    assert site.console.public_read is True and site.database.busy_timeout == 1.5
    assert site.throttles.max_jobs == {"ca": 3}
    assert site.watch.interval == 10.0  # defaults fill what the file leaves out


def test_every_problem_counted_first_in_field_order():
    with pytest.raises(Invalid) as caught:
        load(SiteFile, {"zzz": 1, "executor": {"workers": 0, "kind": "cluster"}, "crds": {"context": "x"}})
    lines = [p.line() for p in caught.value.problems]
    assert lines == ["executor.kind: Input should be 'local' or 'condor' (got 'cluster')",
                     "executor.workers: Input should be greater than or equal to 1 (got 0)",
                     "crds.context: Value error, CRDS context must look like 'hst_NNNN.pmap', got 'x' (got 'x')",
                     "zzz: Extra inputs are not permitted (got 1)"]


def _dan() -> Dan:
    pods = [PodEntry(file=f"ib1f01a{i}q.pod", dataset=f"ib1f01a{i}q", instrument="wfc3", size=4096,
                     sha256=f"{i}" * 64) for i in (1, 2)]
    return Dan(format="owlpipe-dan", version=1, downlink_id="dl-t1",
               created=datetime(2026, 12, 3, 19, 0, 0, 123456, tzinfo=UTC), pods=pods,
               associations=[AssociationEntry(name="ib1f01010", type="DITHER", members=["ib1f01a1q", "ib1f01a2q"])])


def test_dan_json_round_trip_in_pydantic_layout():
    dan = _dan()
    text = dan.to_json()
    assert json.loads(text)["created"] == "2026-12-03T19:00:00.123456Z"  # as pydantic wrote it
    assert text.startswith('{\n  "format": "owlpipe-dan",\n  "version": 1,\n') and text.endswith("}\n")
    assert parse_dan(text, "dl-t1.dan.json") == dan
    asn = dan.associations[0]
    assert AssociationEntry.from_json(asn.to_json()) == asn


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda d: d.pop("created"), "created: Field required"),
    (lambda d: d.update(version="1"), "version: Input should be 1"),
    (lambda d: d.update(pods=[]), "pods: List should have at least 1 item after validation, not 0"),
    (lambda d: d["pods"][0].update(instrument="x" * 17), "pods.0.instrument: String should have at most 16 characters"),
    (lambda d: d.update(created="yesterday"), "created: Input should be a valid datetime or date"),
    (lambda d: d.update(downlink_id="../x"), "downlink_id: String should match pattern"),
])
def test_dan_problems_name_the_field(edit, expected):
    tree = json.loads(_dan().to_json())
    edit(tree)
    with pytest.raises(BadInput, match=re.escape(f"invalid DAN at {expected}")):
        parse_dan(json.dumps(tree), "dl-t1.dan.json")
