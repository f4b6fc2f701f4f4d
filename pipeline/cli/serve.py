"""``owl serve``: the archive service (SIA v2 + JSON API + downloads) over a site."""

from __future__ import annotations

import click

from pipeline.cli.common import config_option, open_site, reports_errors, site_option


@click.command()
@site_option
@config_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="address to bind (loopback by default; put a TLS reverse proxy in front for others)")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="TCP port")
@click.option("--public-url", help="the URL clients use (the reverse proxy's), for access URLs in answers")
@click.option("--notify-interval", type=click.FloatRange(0.1, 3600), default=2.0, show_default=True,
              help="seconds between looks for fulfilled subscriptions and due webhooks")
@reports_errors
def serve(site_dir, config_file, host, port, public_url, notify_interval) -> None:
    """Serve the archive: IVOA SIA v2 at /sia, a JSON API at /api, file and tar downloads with tokens.

    One log line per request on stderr; SIGTERM or Ctrl-C stops it after open requests finish.
    """
    from pipeline.service.server import serve as run

    run(open_site(site_dir, config_file), host=host, port=port, public_url=public_url,
        notify_interval=notify_interval)
