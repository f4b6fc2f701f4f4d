"""The science: calibration engines, checks, telemetry, CRDS references, drizzling and previews.
Imports ``pipeline.core`` and ``pipeline.archive`` only; knows nothing of DAGs or the ``owl`` command."""
