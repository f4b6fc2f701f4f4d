"""Run the service with uvicorn: loopback by default, one log line per request, clean stop on SIGTERM/Ctrl-C.

TLS is not done here: put a reverse proxy (nginx, Apache, Caddy) in front for HTTPS and give its
address as ``--public-url`` so that access URLs in answers point at it.
"""

from __future__ import annotations

import contextlib
import logging
import sys

from pipeline.core.config import Site


def serve(site: Site, *, host: str = "127.0.0.1", port: int = 8080, public_url: str | None = None,
          notify_interval: float = 2.0) -> None:
    """Serve until SIGTERM or SIGINT; uvicorn finishes open requests (5 s at most) before returning."""
    import uvicorn

    from pipeline.service.app import create_app
    from pipeline.service.console import mount

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s owl-serve %(message)s", "%Y-%m-%dT%H:%M:%S"))
    logger = logging.getLogger("owl.service")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    app = create_app(site, public_url=public_url, notify_interval=notify_interval, mounts=[mount()])
    config = uvicorn.Config(app, host=host, port=port, access_log=False, log_level="warning",
                            timeout_graceful_shutdown=5, server_header=False)
    server = _server_class(uvicorn, app.state.service.stopping)(config)
    logger.info("serving site %s on http://%s:%d (SIA v2: /sia, JSON: /api, console: /console)", site.root, host, port)
    server.run()
    logger.info("stopped")


def _server_class(uvicorn, stopping):
    class Server(uvicorn.Server):
        """uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown; for a service that is the normal
        end, so the process exits 0 (and logs that it stopped) instead of dying of the signal. The
        signal also sets ``stopping``, which ends open event streams instead of waiting them out."""

        def handle_exit(self, sig, frame) -> None:
            stopping.set()
            super().handle_exit(sig, frame)

        @contextlib.contextmanager
        def capture_signals(self):
            with super().capture_signals():
                yield
                getattr(self, "_captured_signals", []).clear()

    return Server
