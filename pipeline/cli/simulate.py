"""``owl simulate``: a downlink into the site inbox (pods + DAN) and/or plain FITS.

``owl simulate refs``: the site's CRDS cache of simulated reference files, and reference deliveries.

Examples::

    owl simulate --site S                        # references into S/crds if missing, downlink into S/inbox
    owl simulate --size subarray --fits raws/    # _raw.fits, _asn.fits (+ truth/) for users who start from FITS
    owl simulate refs --site S --bump darkfile --detector UVIS --ccdamp C
    owl simulate refs --site S --acs-modes                  # add the ACS/SBC and ACS/HRC references
    owl simulate refs --site S --bump mlintab --detector SBC
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
#: WFC3/IR MULTIACCUM ramps: written as FITS only (pods and the CRDS cache carry the CCDs).
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
        click.echo(f"building reference files and CRDS context in {crds_root} ({size}) ...", err=True)
        return crdscache.build_reference_cache(crds_root, instruments, size=size)
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
@click.option("--instruments", default="wfc3,acs", show_default=True,
              help="comma list: wfc3, acs, wfc3ir (IR ramps: --fits only)")
@click.option("--seed", type=int, default=1, show_default=True, help="same seed, same downlink")
@click.option("--wfc-readout", type=click.Choice(["DS_INT", "CLAMP"], case_sensitive=False), default="DS_INT",
              show_default=True, help="ACS/WFC readout type (JWROTYPE); DS_INT at gain 2 carries the bias "
                                      "shift and cross-talk calacs corrects")
@click.option("--sbc", "n_sbc", type=click.IntRange(0, 50), default=0, show_default=True,
              help="also this many ACS/SBC dither associations (adds the SBC/HRC references to the site's cache)")
@click.option("--fits", "fits_dir", type=click.Path(file_okay=False),
              help="also/only write _raw.fits and _asn.fits here")
@site_option
@json_option
@click.pass_context
@reports_errors
def simulate(ctx: click.Context, size: str, n_associations: int, instruments: str, seed: int, wfc_readout: str,
             n_sbc: int, fits_dir: str | None, site_dir: str | None, as_json: bool) -> None:
    """Simulate WFC3/UVIS and ACS/WFC observations: a downlink of pods and a DAN into the site inbox
    (building the site's reference files on first use), and with --fits the same exposures as FITS.

    With --fits and no --site, only FITS files are written. UVIS exposures carry CTE trails when the
    site's 2FITS will ask for the CTE branch (``[calibration] pctecorr = ["UVIS"]`` in owl.toml).
    """
    if ctx.invoked_subcommand is not None:
        return
    from pipeline.simulate.downlink import iter_downlink

    names = _instruments(instruments)
    ir_raws = _ir_fits(names, fits_dir, site_dir, seed, size, n_associations)
    names = [n for n in names if n != IR_NAME]
    if not names:
        summary_ir = {"seed": seed, "size": size, "instruments": [IR_NAME], "fits": [str(p) for p in ir_raws]}
        if as_json:
            echo_json(summary_ir)
        else:
            click.echo(f"{len(ir_raws)} WFC3/IR raw files in {fits_dir} (references in {Path(str(fits_dir)) / 'iref'})")
        return

    def progress(plan: AssociationPlan) -> None:
        members = ", ".join(m.rootname for m in plan.members)
        click.echo(f"simulating {plan.name} {plan.asn_type} ({members})", err=True)

    to_site = fits_dir is None or site_dir is not None
    site = open_site(site_dir) if to_site else None
    # the switches the site's 2FITS will write decide which exposures carry CTE trails
    stream = iter_downlink(seed, size, n_associations, names, progress=None if as_json else progress,
                           wfc_readout=wfc_readout.upper(), defaults=site.instruments if site else None)
    if n_sbc:
        stream = _with_sbc(stream, seed, n_sbc)
    written: list[Path] = []
    if fits_dir is not None:
        stream = _also_fits(stream, Path(fits_dir), written)
    summary: dict = {"seed": seed, "size": size, "associations": n_associations, "instruments": names}
    if site is not None:
        from pipeline.science.telemetry.dan import write_downlink

        site.ensure_areas()
        summary["context"] = _ensure_cache(site.areas.crds, names, size)
        if n_sbc:
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


def _with_sbc(stream: Iterator[SimulatedAssociation], seed: int, n_sbc: int) -> Iterator[SimulatedAssociation]:
    """The downlink followed by ``n_sbc`` ACS/SBC dither associations."""
    from pipeline.simulate import sbc

    yield from stream
    for k in range(1, n_sbc + 1):
        yield sbc.association(seed + k, k)  # type: ignore[misc]


def _ensure_sbc_references(crds_root: Path) -> str:
    """Deliver the SBC/HRC references into the site's cache unless it has them (an MLINTAB rmap)."""
    from pipeline.simulate import crdscache
    from pipeline.simulate.acscrds import deliver_sbc_hrc

    if any(crdscache.mappings_dir(crds_root).glob("hst_acs_mlintab_*.rmap")):
        return crdscache.latest_context(crds_root)
    click.echo(f"adding the ACS/SBC and ACS/HRC references to {crds_root} ...", err=True)
    return deliver_sbc_hrc(crds_root)
def _ir_fits(names: list[str], fits_dir: str | None, site_dir: str | None, seed: int, size: str,
             count: int) -> list[Path]:
    """WFC3/IR exposures (one per association asked for) as FITS with their reference files."""
    if IR_NAME not in names:
        return []
    if fits_dir is None or site_dir is not None:
        raise ConfigError("wfc3ir exposures are written as FITS only (--fits DIR without --site): the telemetry "
                          "pods and the CRDS cache do not carry IR ramps yet")
    from pipeline.simulate.irfits import write_ir_fits

    return write_ir_fits(Path(fits_dir), seed, size, count)


def _also_fits(stream: Iterator[SimulatedAssociation], directory: Path,
               written: list[Path]) -> Iterator[SimulatedAssociation]:
    """Write each association as FITS on its way to the telemetry encoder (one in memory at a time)."""
    from pipeline.simulate.downlink import write_fits

    for asn in stream:
        written.extend(write_fits([asn], directory))
        yield asn


@simulate.command("refs")
@click.option("--size", type=SIZES, default="full", show_default=True,
              help="reference images for full-frame data (also serve subarrays) or subarrays only")
@click.option("--instruments", default="wfc3,acs", show_default=True, help="comma list: wfc3, acs")
@click.option("--seed", "detector_seed", type=int, default=None, help="detector seed (default: the standard detector)")
@click.option("--crds-path", type=click.Path(file_okay=False), help="cache directory (default: the site's crds area)")
@click.option("--bump", "bump_type", metavar="TYPE",
              help="deliver a new reference of TYPE (e.g. darkfile) and a new context")
@click.option("--detector", type=click.Choice(["UVIS", "WFC", "SBC", "HRC"], case_sensitive=False),
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
        if bump_type is not None and detector and detector.upper() in ("SBC", "HRC"):
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
            context = crdscache.build_reference_cache(root, _instruments(instruments),
                                                      seed=DETECTOR_SEED if detector_seed is None else detector_seed,
                                                      size=size)
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
