"""Fast start-up guards (no timing): what ``owl --help``, ``owl status`` and the stage executables import.

The figures are in bench/bench_startup.py and docs/benchmarks.md; these tests only keep the heavy
modules (numpy, astropy, crds, drizzlepac) off the paths that must answer at once, in a fresh process.
"""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from pipeline.cli import COMMANDS, main
from tests.conftest import REPO

HEAVY = ("numpy", "astropy", "crds", "drizzlepac", "scipy", "stwcs")
#: Libraries the stage wrapper's path to its claim and ``owl status`` do without (plain DB-API, tomllib):
#: SQLAlchemy's import alone is most of the 0.3 s budget, pydantic's a third of it.
ORM = ("sqlalchemy", "pydantic")

#: Stage modules whose executable reaches its OSF claim before any heavy import.
STAGES = ("ingest", "ingest_fits", "twofits", "rf", "bc", "ca", "ac", "md", "pvw", "ingest_sci", "ingest_pvw",
          "cl")


def heavy_modules_after(code: str, heavy: tuple[str, ...] = HEAVY) -> list[str]:
    """Run ``code`` in a fresh interpreter; the ``heavy`` top-level packages it left in sys.modules."""
    probe = (f"{code}\nimport sys, json\n"
             f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r}))))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_owl_help_imports_no_command_module():
    code = ("import sys\nfrom pipeline.cli import main\nmain(['--help'], standalone_mode=False)\n"
            "assert not [m for m in sys.modules if m.startswith('pipeline.cli.')], 'a command module was imported'\n"
            "assert 'sqlalchemy' not in sys.modules and 'pydantic' not in sys.modules")
    assert heavy_modules_after(code) == []


def test_owl_status_json_imports_nothing_heavy(site):
    argv = ["status", "--json", "--site", str(site.root)]
    code = f"from pipeline.cli import main\nmain({argv!r}, standalone_mode=False)"
    assert heavy_modules_after(code, HEAVY + ORM) == []


@pytest.mark.parametrize("stage", STAGES)
def test_stage_executable_imports_nothing_heavy_before_its_claim(stage):
    assert heavy_modules_after(f"import stages.{stage}") == []


@pytest.mark.parametrize("stage", STAGES)
def test_stage_claim_path_needs_no_orm(stage, site):
    """The wrapper's whole path to the claim (configuration, OSF register/claim) on a real site, after
    importing the stage module, leaves SQLAlchemy and pydantic unimported."""
    code = (f"import stages.{stage}\nfrom pipeline.core.config import load_site\n"
            "from pipeline.core.osf import Blackboard\n"
            f"site = load_site({str(site.root)!r})\nbb = Blackboard(site.database_url, site.database.busy_timeout)\n"
            "bb.reap()\nbb.create('j9cv58abq')\nbb.transition('j9cv58abq', 'CA', '_', 'p', who='test')\n"
            "bb.transition('j9cv58abq', 'CA', 'p', 'c', who='test')")
    assert heavy_modules_after(code, ORM) == []


def test_registry_help_lines_are_the_commands_own():
    """The one-line help in the registry (shown by ``owl --help``) says what each command's docstring says."""
    ctx = click.Context(main)
    drifted = {name: (line, main.get_command(ctx, name).get_short_help_str(limit=1000))
               for name, (_target, line) in COMMANDS.items()
               if main.get_command(ctx, name).get_short_help_str(limit=1000) != line}
    assert drifted == {}


def test_owl_help_lists_every_command():
    out = subprocess.run([sys.executable, "-c", "from pipeline.cli import main; main(['--help'])"], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    listed = [line.split()[0] for line in out.stdout.split("Commands:")[1].splitlines() if line.strip()]
    assert listed == sorted(COMMANDS)


def test_dan_receipt_reads_its_dan_before_importing_the_decoder():
    """owl-dan-receipt validates the DAN (its first work) without numpy/astropy: the pod decoder and
    the simulator's encoder are imported when a pod is checked or written."""
    dan = '{"downlink_id": "dl1", "pods": [{"file": "idn101a1q.pod", "dataset": "idn101a1q"}]}'
    code = ("import stages.dan_receipt\nfrom pipeline.core.errors import BadInput\n"
            "from pipeline.science.telemetry.dan import parse_dan\n"
            f"try:\n    parse_dan({dan!r}, 'dl1.dan.json')\nexcept BadInput as exc:\n    print(exc)")
    assert heavy_modules_after(code) == []
