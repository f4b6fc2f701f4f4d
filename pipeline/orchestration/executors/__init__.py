"""Executors run a workflow's DAG for one association: ``local`` (embedded) or ``condor`` (DAGMan)."""
