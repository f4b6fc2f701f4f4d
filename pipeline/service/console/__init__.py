"""The operators' web console (``/console`` of ``owl serve``): the live OSF grid, each dataset's story,
and the operator's actions (retry, hold, release, request) behind a login and CSRF-checked forms.

Server-rendered Jinja2 pages and one small plain script; templates and static files ship in the package.
"""

from __future__ import annotations

from starlette.routing import Mount

from pipeline.service.console import views


def mount() -> Mount:
    """The console as one more part of :func:`pipeline.service.app.create_app` (``mounts=[mount()]``)."""
    return Mount("/console", routes=views.routes)
