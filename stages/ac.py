"""AC: after-calibration checks on every product of the association (rule table in pipeline.science.checks.ac)."""

from __future__ import annotations

from pathlib import Path

from pipeline.core.names import DatasetName, parse_dataset
from pipeline.core.stage import Stage, StageContext, stage_main
from pipeline.science.checks.rules import Failure, raise_failures

#: Products checked when present, wherever they came from (MD writes the drizzled ones).
OPTIONAL_SUFFIXES = ("flc", "crc", "drz", "drc")


def _member_products(work: Path, member: DatasetName) -> tuple[Path | None, list[str]]:
    """(raw path or None, suffixes calibration must have written for this member)."""
    from astropy.io import fits  # after the OSF claim (fast start-up)

    if member.instrument == "cos":
        return None, ["x1d"]
    raw = work / member.file("raw")
    if not raw.is_file():
        return None, ["flt"]
    wanted = ["flt"]
    if str(fits.getheader(raw).get("PCTECORR", "")).strip().upper() == "PERFORM":  # absent in SBC/HRC raws
        wanted.append("flc")
    return raw, wanted


def _association_products(work: Path, dataset: DatasetName) -> list[tuple[DatasetName, str, bool]]:
    """(product name, suffix, required) of the association itself."""
    from pipeline.core.asntable import read_asn_table

    if dataset.instrument == "cos":  # calcos names the summed spectrum after the association
        return [(dataset, "x1dsum", True)]
    asn = work / dataset.file("asn")
    if not asn.is_file():
        return []
    table = read_asn_table(asn)
    combined = table.asn_type in ("CR-SPLIT", "REPEAT")
    summed = _combined_suffix(work, table.members)
    return [(parse_dataset(p), suffix, combined and suffix == summed)
            for p in table.products for suffix in ("crj", "sfl", *OPTIONAL_SUFFIXES)]


def _combined_suffix(work: Path, members: tuple[str, ...]) -> str:
    """``sfl`` for an SBC association (calacs's ACSSUM sums a REPEAT), else ``crj``."""
    from astropy.io import fits

    raw = work / parse_dataset(members[0]).file("raw") if members else None
    if raw is None or not raw.is_file():
        return "crj"
    return "sfl" if str(fits.getval(raw, "DETECTOR", 0, default="")).strip().upper() == "SBC" else "crj"


class AfterCalibrationChecks(Stage):
    name = "ac"
    column = "AC"
    scope = "association"
    summary = "check that calibration completed and its products are sane"
    modules = ("pipeline.science.checks.ac",)

    def run(self, ctx: StageContext) -> None:
        from pipeline.science.checks import ac  # numpy, astropy: after the OSF claim (fast start-up)

        ceiling = ctx.site.checks.max_flagged_fraction
        failures: list[Failure] = []
        checked: set[Path] = set()

        def check(path: Path, raw: Path | None, required: bool) -> None:
            if path in checked:
                return
            checked.add(path)
            if not path.is_file():
                if required:
                    failures.append(Failure("products", path.name, "-", f"missing from {path.parent}"))
                return
            found = ac.check_product(path, raw=raw, max_flagged_fraction=ceiling)
            failures.extend(found)
            ctx.log(f"{path.name}: {len(ac.RULES)} rules, {len(found)} failure(s)")

        names = ctx.member_names()
        for member in names:
            raw, suffixes = _member_products(ctx.work, member)
            for suffix in suffixes:
                check(ctx.work / member.file(suffix), raw, True)
            for suffix in OPTIONAL_SUFFIXES:
                check(ctx.work / member.file(suffix), raw, False)
        if ctx.dataset.is_association:
            first_raw = ctx.work / names[0].file("raw") if names else None
            for product, suffix, required in _association_products(ctx.work, ctx.dataset):
                check(ctx.work / product.file(suffix), first_raw, required)
        for failure in failures:
            ctx.trailer.error(f"{self.name}: {failure.line()}")
        raise_failures(failures)


main = stage_main(AfterCalibrationChecks)
