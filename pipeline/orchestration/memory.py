"""Each DAG node's ``request_memory``: learned from the site's history, grown on every retry.

A node's first attempt asks for :func:`pipeline.core.usage.memory_request` (p95 of past peaks of the
same stage, instrument, detector and number of exposures, plus a margin; the workflow's value until
there are enough samples). A node that fails with a retryable code — 32 (out of memory) above all,
but also 41 (killed: the kernel's or the startd's OOM killer sends a signal) — is resubmitted by
DAGMan's ``RETRY``; DAGMan substitutes ``$(RETRY)`` in a node's ``VARS`` with the attempt number
(0, 1, 2...), so the submit description's ``request_memory`` expression asks for
``request_mb * 2**retry``, capped at :data:`CEILING_MB`. Every retry grows the request, whatever
its cause: DAGMan cannot tell a submit file why the last attempt failed, and a larger request for a
transient I/O retry only costs a bigger slot once.
"""

from __future__ import annotations

from pipeline.core import usage
from pipeline.core.config import Site
from pipeline.core.names import parse_dataset
from pipeline.orchestration.workflow import DatasetGraph, Node

#: No retry asks for more than this (MB): the largest slot a site's pool is expected to offer.
CEILING_MB = 16384
#: VARS names the submit description reads (``$(owl_memory)``, ``$(owl_retry)``).
MEMORY_VAR = "owl_memory"
RETRY_VAR = "owl_retry"
#: The submit ``request_memory``: the node's request doubled per retry, never above the ceiling.
#: A ClassAd expression, evaluated by the schedd into the job's RequestMemory.
REQUEST_MEMORY = (f"ifThenElse($({MEMORY_VAR}) * pow({usage.RETRY_FACTOR}, $({RETRY_VAR})) > {CEILING_MB}, "
                  f"{CEILING_MB}, $({MEMORY_VAR}) * pow({usage.RETRY_FACTOR}, $({RETRY_VAR})))")


def node_members(graph: DatasetGraph, node: Node) -> list[str]:
    """The exposures a node works on: its one exposure, or every member of the association."""
    if node.stage.scope == "exposure" or not graph.members:
        return [node.dataset]
    return list(graph.members)


def node_requests(site: Site, graph: DatasetGraph) -> dict[str, usage.MemoryRequest]:
    """{node name: first-attempt memory request} for one association's graph. The OSF knows no
    detector; the node's files in the work area say it once they exist (a rewritten DAG), else the
    history of every detector counts."""
    requests: dict[str, usage.MemoryRequest] = {}
    samples: dict[tuple[str, ...], usage.Sample] = {}  # the association's nodes share one look at the files
    for node in graph.nodes.values():
        ds = parse_dataset(node.dataset)
        members = node_members(graph, node)
        key = (ds.name, *members)
        if key not in samples:
            dirs = list(dict.fromkeys([site.work_dir(ds), site.work_dir(parse_dataset(graph.dataset))]))
            samples[key] = usage.describe(node.stage.column, ds.name, ds.instrument, dirs, members)
        sample = samples[key]
        requests[node.name] = usage.memory_request(
            site.database_url, node.stage.column, sample.instrument, sample.nexp, node.stage.request_memory,
            CEILING_MB, sample.detector, site.database.busy_timeout)
    return requests


def retry_memory(first_mb: int, retry: int) -> int:
    """What :data:`REQUEST_MEMORY` evaluates to on attempt ``retry`` (for display and tests)."""
    return min(first_mb * usage.RETRY_FACTOR ** retry, CEILING_MB)
