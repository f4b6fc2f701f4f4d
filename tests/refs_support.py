"""Helpers for the RF/BC/AC tests: an offline CRDS cache over the real 2015 HST mappings, real raws."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from pipeline.science.refs import write_server_config

REAL_CONTEXT = "hst_0349.pmap"


def real_cache(root: Path, realdata: Path, context: str = REAL_CONTEXT) -> Path:
    """A CRDS cache whose mappings are the read-only real ones (symlinked), configured for offline use."""
    cache = root / "crds"
    (cache / "mappings").mkdir(parents=True, exist_ok=True)
    link = cache / "mappings" / "hst"
    if not link.exists():
        link.symlink_to(realdata / "crds" / "mappings_hst_2015", target_is_directory=True)
    (cache / "references" / "hst").mkdir(parents=True, exist_ok=True)
    write_server_config(cache, context)
    return cache


def copy_raws(realdata: Path, dest: Path) -> list[Path]:
    """Writable copies of the three real ACS/HRC raws (the originals are read-only)."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for src in sorted((realdata / "acs_hrc_j8bt" / "raw").glob("*_raw.fits")):
        target = dest / src.name
        shutil.copyfile(src, target)
        target.chmod(stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)
        out.append(target)
    return out


def manifest_bestrefs(realdata: Path) -> dict[str, dict[str, str]]:
    """The MANIFEST's hst_0349.pmap best references per raw: {file: {type: name or 'NOT FOUND'}}."""
    text = (realdata / "acs_hrc_j8bt" / "MANIFEST.md").read_text()
    section = text.split("## CRDS best references", 1)[1]
    result: dict[str, dict[str, str]] = {}
    for name, body in re.findall(r"^- \*\*(\S+_raw\.fits)\*\*: (.+)$", section, flags=re.M):
        refs = {}
        for item in body.split(", "):
            reftype, value = item.split("=", 1)
            refs[reftype.strip()] = "NOT FOUND" if value.startswith("NOT FOUND") else value.strip()
        result[name] = refs
    return result


HRC_FILTERS = ("F220W", "F250W", "F330W", "F344N", "F435W", "F555W", "F606W", "F814W", "F475W", "F502N")


def varied_params(base: dict, count: int, seed: int = 1) -> list[dict]:
    """Catalogue-like variations of a real HRC header: dates over the mission, amplifiers, gains,
    filters (some unknown to the rules, so failures are exercised too)."""
    import random

    rng = random.Random(seed)
    out = []
    for _ in range(count):
        p = dict(base)
        p["DATE-OBS"] = f"{rng.randint(2002, 2014)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        p["TIME-OBS"] = f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
        p["CCDAMP"] = rng.choice("ABCD")
        p["CCDGAIN"] = rng.choice((1, 2, 4, 3))
        p["FILTER1"] = "CLEAR1S"
        p["FILTER2"] = rng.choice(HRC_FILTERS)
        out.append(p)
    return out


def clean_crds_env(cache: Path) -> dict[str, str]:
    """Only CRDS_PATH (plus what a process needs to start): no server, no mode, no context."""
    return {"CRDS_PATH": str(cache), "PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}


def assert_certify_clean(cache: Path, files: list[str], context: str) -> None:
    """``crds certify`` on ``files`` against ``context`` under ``cache``: exit 0, "0 errors", no ERROR.

    certify's overlap check writes the comparison context's rmap of each reference type to the fixed
    path ``/tmp/<rmap name>`` and leaves it there; the ones this run added are removed afterwards."""
    scratch = (Path("/tmp") / p.name for p in (cache / "mappings" / "hst").glob("*.rmap"))
    added = [p for p in scratch if not p.exists()]
    try:
        proc = subprocess.run([sys.executable, "-m", "crds.certify", *files, "--comparison-context", context],
                              env=clean_crds_env(cache), capture_output=True, text=True, timeout=600)
    finally:
        for path in added:
            path.unlink(missing_ok=True)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0 and re.search(r"\b0 errors", log) and "ERROR" not in log, log[-3000:]


#: A script printing crds's best references (JSON) for ``argv[2:]`` under context ``argv[1]``.
BESTREFS = """
import json, sys, crds
from crds import data_file
out = {}
for path in sys.argv[2:]:
    header = data_file.get_free_header(path, (), None, "hst")
    out[path] = crds.getrecommendations(header, context=sys.argv[1], observatory="hst")
print(json.dumps(out))
"""
