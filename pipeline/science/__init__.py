"""The science: calibration engines, checks, telemetry, CRDS references, drizzling and previews.
Imports only the core and the archive; knows nothing of DAGs or the ``owl`` command."""
