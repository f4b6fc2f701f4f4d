"""``owl simulate``: a downlink into the site inbox (pods + DAN) and/or plain FITS.

``owl simulate refs``: the site's CRDS cache of simulated reference files, and reference deliveries.

Examples::

    owl simulate --site S                        # references into S/crds if missing, downlink into S/inbox
    owl simulate --size subarray --fits raws/    # _raw.fits, _asn.fits (+ truth/) for users who start from FITS
    owl simulate refs --site S --bump darkfile --detector UVIS --ccdamp C
    owl simulate refs --site S --acs-modes                  # add the ACS/SBC and ACS/HRC references
    owl simulate refs --site S --bump mlintab --detector SBC
    owl simulate acs-modes DIR --hrc-aperture HRC-512 --sbc-type REPEAT   # HRC/SBC FITS + jref
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pipeline.cli.common import echo_json, json_option, open_site, reports_errors, site_option
from pipeline.core.errors import ConfigError

if TYPE_CHECKING:
    from pipeline.simulate.associations import AssociationPlan
    from pipeline.simulate.downlink import SimulatedAssociation

SIZES = click.Choice(["full", "subarray"])
#: WFC3/IR MULTIACCUM ramps: pods in a downlink (IR references delivered into the site's cache), or with
#: --fits and no --site raw files with their own reference directory ``iref/``.
IR_NAME = "wfc3ir"


def _instruments(text: str) -> list[str]:
    from pipeline.simulate.geometry import CAMERAS

    names = [t.strip().lower() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in CAMERAS and n != IR_NAME]
    if not names or unknown:
        raise click.BadParameter(f"expected a comma list of {', '.join(sorted([*CAMERAS, IR_NAME]))}, got {text!r}")
    return names


def _ensure_cache(crds_root: Path, instruments: list[str], size: str) -> str:
    """Build the site's reference cache if it has none; refuse one that cannot calibrate this data."""
    from pipeline.simulate import crdscache

    if not any(crdscache.mappings_dir(crds_root).glob("hst_*.pmap")):
        from pipeline.simulate.prebuilt import build_or_link

        click.echo(f"building reference files and CRDS context in {crds_root} ({size}) ...", err=True)
        return build_or_link(crds_root, instruments, size=size)
    marker = crdscache.read_marker(crds_root)
    missing = sorted(set(instruments) - set(marker["instruments"]))
    if missing or (size == "full" and marker["size"] != "full"):
        raise ConfigError(
            f"CRDS cache {crds_root} was built for {marker['size']} {','.join(marker['instruments'])} data and "
            f"cannot calibrate {size} {','.join(instruments)} exposures: use a new site or rebuild its crds area",
            path=crds_root)
    return crdscache.latest_context(crds_root)


@click.group(invoke_without_command=True)
@click.option("--size", type=SIZES, default="full", show_default=True,
              help="full-frame exposures, or 512x512 corner subarrays (fast)")
@click.option("--associations", "n_associations", type=click.IntRange(1, 500), default=3, show_default=True,
              help="associations in the downlink (cycling DITHER, CR-SPLIT, SINGLETON per instrument)")
@click.option("--instruments", default="wfc3,acs,wfc3ir", show_default=True,
              help="comma list: wfc3, acs, wfc3ir (WFC3/IR MULTIACCUM ramps); associations go to them in turn")
@click.option("--seed", type=int, default=1, show_default=True, help="same seed, same downlink")
@click.option("--wfc-readout", type=click.Choice(["DS_INT", "CLAMP"], case_sensitive=False), default="DS_INT",
              show_default=True, help="ACS/WFC readout type (JWROTYPE); DS_INT at gain 2 carries the bias "
                                      "shift and cross-talk calacs corrects")
@click.option("--recent", type=click.IntRange(0, 500), default=0, show_default=True,
              help="the last N associations observed in the last weeks (exclusive access: still proprietary)")
@click.option("--sbc", "n_sbc", type=click.IntRange(0, 50), default=0, show_default=True,
              help="also this many ACS/SBC associations, DITHER and REPEAT in turn (adds the SBC/HRC "
                   "references to the site's cache)")
@click.option("--hrc", "n_hrc", type=click.IntRange(0, 50), default=0, show_default=True,
              help="also this many ACS/HRC CR-SPLIT pairs (1062x1044 raws with overscan)")
@click.option("--fits", "fits_dir", type=click.Path(file_okay=False),
              help="also/only write _raw.fits and _asn.fits here")
@site_option
@json_option
@click.pass_context
@reports_errors
def simulate(ctx: click.Context, size: str, n_associations: int, instruments: str, seed: int, wfc_readout: str,
             recent: int, n_sbc: int, n_hrc: int, fits_dir: str | None, site_dir: str | None, as_json: bool) -> None:
    """Simulate WFC3/UVIS, ACS/WFC and WFC3/IR observations: a downlink of pods and a DAN into the
    site inbox (building the site's reference files on first use), and with --fits the same
    exposures as FITS. The associations go to the instruments in turn (3 by default: one each).

    With --fits and no --site, only FITS files are written. UVIS and full-frame WFC exposures carry
    CTE trails when the site's 2FITS will ask for the CTE branch (``[calibration] pctecorr =
    ["UVIS", "WFC"]`` in owl.toml).
    """
    if ctx.invoked_subcommand is not None:
        return
    from pipeline.simulate.downlink import iter_downlink

    names = _instruments(instruments)
    fits_only = fits_dir is not None and site_dir is None
    n_ir = sum(names[i % len(names)] == IR_NAME for i in range(n_associations))
    ir_raws = _ir_fits(Path(fits_dir), seed, size, n_ir) if n_ir and fits_only else []
    ccd_names = [n for n in names if n != IR_NAME]
    if not ccd_names and fits_only:
        summary_ir = {"seed": seed, "size": size, "instruments": [IR_NAME], "fits": [str(p) for p in ir_raws]}
        if as_json:
            echo_json(summary_ir)
        else:
            click.echo(f"{len(ir_raws)} WFC3/IR raw files in {fits_dir} (references in {Path(str(fits_dir)) / 'iref'})")
        return

    def progress(plan: AssociationPlan) -> None:
        members = ", ".join(m.rootname for m in plan.members)
        click.echo(f"simulating {plan.name} {plan.asn_type} ({members})", err=True)

    site = None if fits_only else open_site(site_dir)
    # the switches the site's 2FITS will write decide which exposures carry CTE trails
    stream: Iterator[SimulatedAssociation] = iter(())
    if n_associations > n_ir:
        stream = iter_downlink(seed, size, n_associations - n_ir, ccd_names, progress=None if as_json else progress,
                               wfc_readout=wfc_readout.upper(), recent=min(recent, n_associations - n_ir),
                               defaults=site.instruments if site else None)
    if n_ir and not fits_only:
        stream = _with_ir(stream, seed, size, n_ir, quiet=as_json)
    if n_sbc or n_hrc:
        stream = _with_acs_modes(stream, seed, n_sbc, n_hrc)
    written: list[Path] = []
    if fits_dir is not None:
        stream = _also_fits(stream, Path(fits_dir), written)
    summary: dict = {"seed": seed, "size": size, "associations": n_associations, "instruments": names}
    if site is not None:
        from pipeline.science.telemetry.dan import write_downlink

        site.ensure_areas()
        summary["context"] = _ensure_cache(site.areas.crds, ccd_names or ["wfc3"], size)
        if n_ir:
            from pipeline.simulate.irdownlink import ensure_ir_references

            summary["context"] = ensure_ir_references(site.areas.crds, size)
        if n_sbc or n_hrc:
            summary["context"] = _ensure_sbc_references(site.areas.crds)
        summary["dan"] = str(write_downlink(stream, site.areas.inbox))
    else:
        for _ in stream:
            pass
    summary["fits"] = [str(p) for p in [*ir_raws, *written]]
    if as_json:
        echo_json(summary)
        return
    if "dan" in summary:
        click.echo(f"downlink {summary['dan']} (CRDS context {summary['context']})")
    if written:
        click.echo(f"{len(written)} FITS files in {fits_dir} (truth in {Path(fits_dir) / 'truth'})")


def _with_acs_modes(stream: Iterator[SimulatedAssociation], seed: int, n_sbc: int,
                    n_hrc: int) -> Iterator[SimulatedAssociation]:
    """The downlink followed by ``n_sbc`` ACS/SBC associations (DITHER, REPEAT, DITHER, ...) and
    ``n_hrc`` ACS/HRC CR-SPLIT pairs."""
    from pipeline.simulate import hrc, sbc

    yield from stream
    for k in range(1, n_sbc + 1):
        yield sbc.association(seed + k, k, "REPEAT" if k % 2 == 0 else "DITHER")  # type: ignore[misc]
    for k in range(1, n_hrc + 1):
        yield hrc.association(seed + k, k)


def _ensure_sbc_references(crds_root: Path) -> str:
    """Deliver the SBC/HRC references into the site's cache unless it has them (an MLINTAB rmap)."""
    from pipeline.simulate import crdscache
    from pipeline.simulate.acscrds import deliver_sbc_hrc

    if any(crdscache.mappings_dir(crds_root).glob("hst_acs_mlintab_*.rmap")):
        return crdscache.latest_context(crds_root)
    click.echo(f"adding the ACS/SBC and ACS/HRC references to {crds_root} ...", err=True)
    return deliver_sbc_hrc(crds_root)


def _ir_fits(fits_dir: Path, seed: int, size: str, count: int) -> list[Path]:
    """WFC3/IR exposures (one per IR association slot) as FITS with their reference files (``iref/``)."""
    from pipeline.simulate.irfits import write_ir_fits

    return write_ir_fits(fits_dir, seed, size, count)


def _with_ir(stream: Iterator[SimulatedAssociation], seed: int, size: str, count: int, *,
             quiet: bool) -> Iterator[SimulatedAssociation]:
    """The downlink followed by ``count`` WFC3/IR associations (MULTIACCUM ramps)."""
    from pipeline.simulate.irdownlink import iter_ir_downlink

    yield from stream
    for asn in iter_ir_downlink(seed, size, count):
        if not quiet:
            click.echo(f"simulated {asn.name} {asn.asn_type} WFC3/IR ({', '.join(m.rootname for m in asn.members)})",
                       err=True)
        yield asn


def _also_fits(stream: Iterator[SimulatedAssociation], directory: Path,
               written: list[Path]) -> Iterator[SimulatedAssociation]:
    """Write each association as FITS on its way to the telemetry encoder (one in memory at a time)."""
    from pipeline.simulate.downlink import write_fits

    for asn in stream:
        written.extend(write_fits([asn], directory))
        yield asn


@simulate.command("acs-modes")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--hrc-aperture", type=click.Choice(["HRC", "HRC-512", "HRC-SUB1.5"]), default="HRC", show_default=True,
              help="HRC full frame or subarray")
@click.option("--sbc-type", type=click.Choice(["DITHER", "REPEAT"]), default="REPEAT", show_default=True,
              help="SBC association type (REPEAT: calacs sums it into _sfl)")
@click.option("--seed", type=int, default=1, show_default=True)
@reports_errors
def acs_modes(directory: str, hrc_aperture: str, sbc_type: str, seed: int) -> None:
    """ACS/HRC and ACS/SBC raws as FITS with their references in DIRECTORY/jref (for
    ``jref=DIRECTORY/jref/ owl calibrate --engine compare``)."""
    from pipeline.simulate.hrc import write_mode_examples

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    for path in write_mode_examples(out, seed=seed, aperture=hrc_aperture, sbc_type=sbc_type):
        click.echo(str(path))


@simulate.command("refs")
@click.option("--size", type=SIZES, default="full", show_default=True,
              help="reference images for full-frame data (also serve subarrays) or subarrays only")
@click.option("--instruments", default="wfc3,acs", show_default=True, help="comma list: wfc3, acs")
@click.option("--seed", "detector_seed", type=int, default=None, help="detector seed (default: the standard detector)")
@click.option("--crds-path", type=click.Path(file_okay=False), help="cache directory (default: the site's crds area)")
@click.option("--bump", "bump_type", metavar="TYPE",
              help="deliver a new reference of TYPE (e.g. darkfile) and a new context")
@click.option("--detector", type=click.Choice(["UVIS", "WFC", "SBC", "HRC", "IR"], case_sensitive=False),
              help="with --bump: only this detector")
@click.option("--acs-modes", is_flag=True, help="also deliver the ACS/SBC and ACS/HRC references (new context)")
@click.option("--ccdamp", help="with --bump: only this amplifier configuration (e.g. ABCD, C)")
@site_option
@json_option
@reports_errors
def refs(size: str, instruments: str, detector_seed: int | None, crds_path: str | None, bump_type: str | None,
         detector: str | None, acs_modes: bool, ccdamp: str | None, site_dir: str | None, as_json: bool) -> None:
    """Build the simulated reference files and CRDS context hst_0001.pmap, or deliver a new reference.

    Without --bump on an existing cache, show it.
    """
    from pipeline.simulate import crdscache
    from pipeline.simulate.detector import DETECTOR_SEED

    root = Path(crds_path) if crds_path else open_site(site_dir).areas.crds
    if bump_type is None and (detector or ccdamp):
        raise click.UsageError("--detector and --ccdamp only go with --bump")
    try:
        if bump_type is not None and detector and detector.upper() == "IR":
            from pipeline.simulate.ircrds import bump_ir_reference

            if ccdamp:
                raise click.UsageError("--ccdamp does not apply to IR references (always ABCD)")
            context = bump_ir_reference(root, bump_type)
            action = f"delivered IR {bump_type}: new context {context}"
        elif bump_type is not None and detector and detector.upper() in ("SBC", "HRC"):
            from pipeline.simulate.acscrds import bump_mode_reference

            context = bump_mode_reference(root, bump_type, detector)
            action = f"delivered {detector.upper()} {bump_type}: new context {context}"
        elif bump_type is not None:
            context = crdscache.bump_reference(root, bump_type, detector=detector, ccdamp=ccdamp)
            action = f"delivered {bump_type}: new context {context}"
        elif any(crdscache.mappings_dir(root).glob("hst_*.pmap")):
            action = "cache already built (use --bump TYPE to deliver a reference)"
        else:
            click.echo(f"building reference files in {root} ...", err=True)
            from pipeline.simulate.prebuilt import build_or_link

            context = build_or_link(root, _instruments(instruments), size=size,
                                    seed=DETECTOR_SEED if detector_seed is None else detector_seed)
            action = f"built context {context}"
        if acs_modes:
            from pipeline.simulate.acscrds import deliver_sbc_hrc

            context = deliver_sbc_hrc(root)
            action += f"; SBC and HRC references delivered: context {context}"
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    summary = crdscache.cache_summary(root)
    if as_json:
        echo_json({**summary, "action": action})
        return
    click.echo(action)
    click.echo(f"CRDS_PATH={summary['crds_path']}  context {summary['context']}  ({summary['size']}, "
               f"{len(summary['references'])} reference files)")
