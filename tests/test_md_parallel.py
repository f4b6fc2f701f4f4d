"""AstroDrizzle's per-image steps and the final drizzle's chips in forked processes (``drizzle_fork``,
``drizzle_final``): the product, pixel for pixel and header value for value, and the log as in the
one-process run; a child's error or death reaches MD."""

from __future__ import annotations

import logging
import os
import re
import resource
import shutil
import signal
import time
from multiprocessing import util as mp_util
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from pipeline.core import usage
from pipeline.core.names import parse_dataset
from pipeline.core.stage import install_sigterm
from pipeline.science import drizzle_exact, drizzle_fork, drizzle_sets, forked
from pipeline.science.drizzle import drizzle
from pipeline.simulate.mdriztab import mdriz_table
from tests.products_data import Field, star_field, write_flt

SHAPE = (160, 200)
ASN = "idn101010"
#: Header values that differ between any two runs (times, the run's own file names).
VOLATILE = re.compile(r"^(DATE|IRAF-TLM|PROCTIME|FILENAME|DRZSH\d+)$")
checked = pytest.mark.skipif(drizzle_exact.drizzlepac_version() != drizzle_exact.CHECKED_DRIZZLEPAC,
                             reason="the parallel steps are only used with the checked drizzlepac")


DITHERS = ((0.0, 0.0), (7.5, 4.5), (3.25, 11.5))   # pixels, all within the chip gap


def _inputs(tmp_path: Path, count: int, dithers: tuple[tuple[float, float], ...] = DITHERS) -> tuple[list[Path], Path]:
    """``count`` dithered 2-chip UVIS ``_flt`` files naming the simulated MDRIZTAB, and its CRDS cache."""
    cache = tmp_path / "crds"
    (cache / "references" / "hst").mkdir(parents=True)
    mdriz_table("WFC3", "UVIS", "owlmd000i_mdz.fits").writeto(cache / "references/hst/owlmd000i_mdz.fits")
    sky = star_field(Field(), 30, SHAPE, seed=3)
    paths = [write_flt(tmp_path / "src" / f"idn101a{i + 1}q_flt.fits", sky, shape=SHAPE, asn_id=ASN, seed=i,
                       dither=dithers[i], cosmic_rays=15) for i in range(count)]
    for path in paths:
        fits.setval(path, "MDRIZTAB", value="iref$owlmd000i_mdz.fits")
    return paths, cache


def _run(tmp_path: Path, name: str, sources: list[Path], cache: Path, processes: int):
    work = tmp_path / name
    work.mkdir()
    copies = [Path(shutil.copy2(p, work / p.name)) for p in sources]
    return drizzle(copies, parse_dataset(ASN), work, cache=cache, processes=processes)


def _same_products(one: Path, two: Path) -> None:
    """Pixel for pixel and header value for value (but for what differs between any two runs)."""
    with fits.open(one) as a, fits.open(two) as b:
        assert [h.name for h in a] == [h.name for h in b]
        for ha, hb in zip(a, b, strict=True):
            if ha.is_image and ha.data is not None:
                assert np.array_equal(ha.data, hb.data, equal_nan=True), ha.name
            elif ha.data is not None:  # the HDRTAB table: byte for byte (NaN included)
                assert ha.data.tobytes() == hb.data.tobytes(), ha.name
            keys = [k for k in ha.header if not VOLATILE.match(k)]
            assert keys == [k for k in hb.header if not VOLATILE.match(k)], ha.name
            for key in keys:
                if key not in ("HISTORY", "COMMENT"):
                    assert ha.header[key] == hb.header[key], (ha.name, key)
        assert np.count_nonzero(a["CTX"].data) > 0


def _messages(log: str) -> list[str]:
    """The log's messages without timestamps and timings (which differ between any two runs). drizzlepac
    writes a step's sub-second part as ``str(microseconds / 1e6)[1:-3]``: an 'e' when it falls below
    1e-4 s (``5e-05`` gives ``e``)."""
    lines = [re.sub(r"\d+:\d{2}:\d{2}[.\de]*|\d+\.\d* sec\.?|\d{4}-\d{2}-\d{2}[ T][\d:.]+", "T", ln)
             for ln in log.splitlines()]
    return [ln for ln in lines if ln.strip()]


@checked
@pytest.mark.parametrize("count", [2, 3])
def test_two_processes_make_the_one_process_product(tmp_path, count):
    sources, cache = _inputs(tmp_path, count)
    one = _run(tmp_path, "one", sources, cache, processes=1)
    two = _run(tmp_path, "two", sources, cache, processes=2)
    assert two.fast_paths == (*one.fast_paths, "separate drizzle, driz_cr: images in 2 processes",
                              drizzle_fork.FINAL_CHIPS)
    _same_products(one.path, two.path)
    assert _messages(two.log) == _messages(one.log)


@checked
def test_chips_that_meet_on_the_output_are_drizzled_one_after_another(tmp_path):
    sources, cache = _inputs(tmp_path, 2, dithers=((0.0, 0.0), (2.5, 40.5)))  # across the 31-row chip gap
    one = _run(tmp_path, "one", sources, cache, processes=1)
    two = _run(tmp_path, "two", sources, cache, processes=2)
    assert drizzle_fork.FINAL_CHIPS not in two.fast_paths
    _same_products(one.path, two.path)
    assert _messages(two.log) == _messages(one.log)


class _Chip:
    def __init__(self) -> None:
        self.outputNames: dict[str, object] = {"data": "x"}


class _Image:
    """Test double of drizzlepac's ``imageObject``: the attributes ``drizzle_fork`` reads and sets."""

    scienceExt = "SCI"

    def __init__(self, name: str) -> None:
        self.name, self.virtualOutputs, self.chips = name, {}, [_Chip(), _Chip()]

    def returnAllChips(self, extname: str) -> list[_Chip]:
        return self.chips


def _step(images: list[_Image]) -> None:
    """A per-image step: an array output per image, a chip name, a log line, and a failure on request."""
    for image in images:
        logging.getLogger("drizzlepac.test").info("step on %s in %d", image.name, os.getpid())
        if image.name == "bad":
            raise ValueError(f"{image.name}: cannot")
        if image.name == "dies":
            os._exit(9)
        image.virtualOutputs[f"{image.name}_out"] = np.full(3, len(image.name), dtype=np.float32)
        image.chips[1].outputNames["driz_version"] = image.name


def test_split_keeps_order_and_balance():
    assert drizzle_fork.split(list(range(5)), 2) == [[0, 1, 2], [3, 4]]
    assert drizzle_fork.split([1], 2) == [[1]]
    assert drizzle_fork.split([1, 2], 8) == [[1], [2]]


def test_children_results_come_back_and_logs_in_image_order(caplog):
    images = [_Image(n) for n in ("a", "bb", "ccc")]
    with caplog.at_level(logging.INFO, logger="drizzlepac.test"):
        drizzle_fork.run_split(images, _step, 2)
    assert [im.virtualOutputs[f"{im.name}_out"].tolist() for im in images] == [[1] * 3, [2] * 3, [3] * 3]
    assert [im.chips[1].outputNames["driz_version"] for im in images] == ["a", "bb", "ccc"]
    said = [r.getMessage().split(" in ") for r in caplog.records]
    assert [s[0] for s in said] == ["step on a", "step on bb", "step on ccc"]
    assert said[0][1] == said[1][1] == str(os.getpid()) != said[2][1]  # the last group ran in a child


def test_a_childs_error_is_raised_after_the_earlier_images_logs(caplog):
    images = [_Image("a"), _Image("bad")]
    with caplog.at_level(logging.INFO, logger="drizzlepac.test"), pytest.raises(ValueError, match="bad: cannot"):
        drizzle_fork.run_split(images, _step, 2)
    assert [r.getMessage().split(" in ")[0] for r in caplog.records] == ["step on a", "step on bad"]
    assert "bad_out" not in images[1].virtualOutputs


def test_a_child_that_dies_fails_the_run_as_out_of_memory():
    with pytest.raises(MemoryError, match="died"):
        drizzle_fork.run_split([_Image("a"), _Image("dies")], _step, 2)


@pytest.fixture
def stage_sigterm():
    """SIGTERM handled as a stage node handles it (raising), as the forked children inherit it."""
    previous = signal.getsignal(signal.SIGTERM)
    install_sigterm()
    yield
    signal.signal(signal.SIGTERM, previous)


def test_a_child_that_sent_its_outcome_exits_by_itself(tmp_path, capfd, stage_sigterm):
    """Not terminated while it exits (its exit handlers still running)."""
    finished = tmp_path / "finished"

    def task() -> int:
        mp_util.Finalize(None, lambda: (time.sleep(0.5), finished.write_text("yes")), exitpriority=0)
        return 7

    mine, outcomes = forked.fork_tasks([task], lambda: 1)
    assert (mine, [o.result for o in outcomes]) == (1, [7])
    assert finished.read_text() == "yes"
    assert "owl-md-step" not in capfd.readouterr().err


def test_children_of_a_failing_node_end_quietly(capfd, stage_sigterm):
    """Terminated when this process fails, a child dies without a traceback in the log it shares,
    even while it exits (its exit handlers still running)."""

    def task() -> None:
        mp_util.Finalize(None, lambda: time.sleep(30), exitpriority=0)

    started = time.monotonic()
    with pytest.raises(ValueError, match="here failed"):
        forked.fork_tasks([task], lambda: (time.sleep(0.5), int("here failed")))
    assert time.monotonic() - started < 10
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Interrupted" not in err


def test_a_childs_memory_counts_in_the_nodes_peak():
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    def grow(images: list[_Image]) -> None:
        for image in images:
            image.virtualOutputs["out"] = np.ones(2**26, dtype=np.float32)  # 256 MB, touched

    drizzle_fork.run_split([_Image("a"), _Image("b")], grow, 2)
    assert usage.peak_rss_mb() >= resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0 + 200 > own


def test_one_set_gets_the_nodes_cpus(monkeypatch):
    seen = []
    monkeypatch.setattr(drizzle_sets, "drizzle", lambda *a, processes=1, **k: seen.append(processes))
    drizzle_sets.drizzle_sets({"flt": []}, parse_dataset(ASN), Path("."), environ={"OMP_NUM_THREADS": "2"})
    drizzle_sets.drizzle_sets({"flt": []}, parse_dataset(ASN), Path("."), environ={"OMP_NUM_THREADS": "1"})
    assert seen == [2, 1]


def test_split_uses_no_more_processes_than_the_node_may_keep_busy_now(tmp_path, monkeypatch):
    """The local executor lowers and raises a node's CPUs as other jobs come and go (hostenv.cpus_now):
    each split reads it when it starts."""
    from pipeline.core import hostenv

    now = tmp_path / "MD.cpus"
    monkeypatch.setenv(hostenv.CPUS_NOW_VARIABLE, str(now))

    def work(group: list) -> None:
        for image in group:
            image.virtualOutputs["pid"] = os.getpid()

    for allowed, groups in (("1", 1), ("2", 2)):
        now.write_text(allowed)
        images = [_Image("a"), _Image("b")]
        assert drizzle_fork.run_split(images, work, 2) == groups
        pids = [i.virtualOutputs["pid"] for i in images]
        assert pids[0] == os.getpid() and (pids[1] == os.getpid()) == (groups == 1)
