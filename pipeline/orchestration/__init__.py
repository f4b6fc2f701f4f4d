"""Orchestration: workflows, DAGMan rendering, executors, the controller, reprocessing campaigns.
Knows stages only as executables and never imports the face (``pipeline.cli``)."""
