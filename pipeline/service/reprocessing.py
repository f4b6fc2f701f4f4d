"""What a reprocessing campaign means for one dataset: queued or running, and what is served meanwhile."""

from __future__ import annotations

from typing import Any

from pipeline.core.config import Site
from pipeline.orchestration.reprocess import parameter_version

#: Campaign row state → what a user is told.
USER_STATE = {"pending": "queued", "submitted": "running"}


def active_rows(site: Site, dataset: str) -> list[tuple[Any, Any]]:
    """(campaign, row) pairs still to reprocess ``dataset`` (as the row itself or one of its exposures)."""
    from pipeline.orchestration.campaign import CampaignStore  # imported when first asked: keeps server start-up short

    return [(c, r) for c, r in CampaignStore(site).containing(dataset)
            if c.state == "running" and r.state in USER_STATE]


def state(site: Site, dataset: str, serving: int | None) -> dict[str, Any] | None:
    """The dataset's reprocessing state for its API record, None when no campaign waits for it."""
    rows = active_rows(site, dataset)
    if not rows:
        return None
    campaign, row = rows[0]
    return {"state": USER_STATE[row.state], "campaign": campaign.name, "new_context": campaign.new_context,
            "unit": row.dataset, "requested": row.requested is not None, "serving_version": serving,
            "message": row.message}


def header_line(info: dict[str, Any] | None) -> dict[str, str]:
    """The ``X-Owl-Reprocessing`` header a download carries while its dataset waits for reprocessing."""
    if info is None:
        return {}
    return {"X-Owl-Reprocessing": f"{info['state']} in campaign {info['campaign']} ({info['new_context']}); "
                                  f"serving version {info['serving_version']}; POST .../request to prioritise "
                                  "and be notified"}


def baseline(site: Site, dataset: str) -> list[dict[str, Any]]:
    """The exposures whose next version fulfils a subscription, with the version each has now.

    Inside a campaign: the row's affected exposures (only ``dataset`` if it is one of them); otherwise
    the dataset itself.
    """
    for _campaign, row in active_rows(site, dataset):
        names = [e["dataset"] for e in row.exposures]
        chosen = [dataset] if dataset in names else names
        return [{"dataset": n, "version": _current(site, n)} for n in chosen]
    return [{"dataset": dataset, "version": _current(site, dataset)}]


def _current(site: Site, dataset: str) -> int:
    found = parameter_version(site, dataset)
    return 0 if found is None else found[0]


def arrived(site: Site, exposures: list[dict[str, Any]]) -> list[tuple[str, int, str | None]] | None:
    """(dataset, new version, its CRDS context) for each exposure once every one has a newer version; else None."""
    out = []
    for e in exposures:
        found = parameter_version(site, e["dataset"])
        if found is None or found[0] <= e["version"]:
            return None
        out.append((e["dataset"], found[0], found[1]))
    return out
