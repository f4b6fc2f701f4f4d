"""owlpipe's library, in layers; each layer imports only the layers listed before it.

    core           names, config, osf, trailer, stage contract, exit codes, errors, fs and db helpers
       ↑
    archive        the content-addressed store and its catalogue
       ↑
    science        calib (engines), checks, telemetry, refs (CRDS), drizzle, preview, products
       ↑
    orchestration  workflow, dag, executors, controller, campaigns, reprocessing
    simulate       the synthetic observatory (imports core and science, never orchestration)
       ↑
    cli, service   the face: the ``owl`` command (one module per command group) and the HTTP service

``stages/`` (the ``owl-<stage>`` executables) are thin ``main()``s over every layer but the face.
``pipeline/resources/`` holds the files shipped with the package (default site file, instrument
defaults, workflows), read with :mod:`importlib.resources`. ``tests/test_layers.py`` enforces the
directions; ``docs/architecture.md`` explains them.
"""

from pipeline.core import hostenv as _hostenv  # noqa: F401  (a usable HOME/TMPDIR before any library import)
