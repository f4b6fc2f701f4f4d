"""The PRE and POST hooks of every DAG node: what moves OSF columns around a stage run.

The stage wrapper moves its own column ``_/w/x/e -> p -> c|e``; the hooks record what a stage
cannot: that a node is queued (``w``), that a job died without recording anything (``x``), that a
retry is pending (``w``), and they translate the stage's exit code into what DAGMan acts on
(:func:`pipeline.core.exitcodes.dagman_code`). DAGMan runs them as ``owl osf hook pre|post ...``
(:mod:`pipeline.cli.hook`); the local executor calls these functions directly, so both
executors share one implementation.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.config import Site
from pipeline.core.errors import OwlError
from pipeline.core.exitcodes import DAGMAN_FATAL, ExitCode, dagman_code, is_retryable, meaning
from pipeline.core.names import parse_dataset
from pipeline.core.osf import Blackboard, OSFError, TransitionConflict
from pipeline.core.trailer import Trailer

#: PRE exit value meaning "nothing to do: the column is already complete (or not applicable)";
#: the DAG declares it with ``PRE_SKIP`` so DAGMan marks the node done without running it.
PRE_SKIP_CODE = 99
#: PRE exit value meaning "not now: the dataset is held, or the column is being processed
#: elsewhere"; the DAG declares ``SCRIPT DEFER`` with it, so DAGMan reruns the PRE script later.
PRE_DEFER_CODE = 98
PRE_DEFER_SECONDS = 60


@dataclass(frozen=True)
class NodeRef:
    """What a hook needs to know about its node."""

    site: Site
    column: str
    dataset: str
    node: str

    @property
    def who(self) -> str:
        return f"dag:{self.node}"

    def trailer(self) -> Trailer:
        return Trailer(self.site.trailer_path(parse_dataset(self.dataset)))


def node_letters(bb: Blackboard, column: str, dataset: str) -> dict[str, str]:
    """Letters of the rows a node moves: the dataset and, for an association, its members."""
    rows = [bb.get(dataset), *bb.query(parent=dataset)]
    return {e.dataset: e.letter(column) for e in rows}


def pre(bb: Blackboard, ref: NodeRef) -> int:
    """Before the job: mark the node's rows ``w`` (queued); report done, held or busy rows."""
    try:
        bb.reap(who=ref.who)
        letters = node_letters(bb, ref.column, ref.dataset)
        values = set(letters.values())
        if values <= {"c", "n"}:
            ref.trailer().info(f"{ref.who}: OSF {ref.column} already {''.join(sorted(values))}; node skipped")
            return PRE_SKIP_CODE
        if values & {"h", "p"}:
            busy = ", ".join(f"{d} is '{v}'" for d, v in letters.items() if v in "hp")
            print(f"owl hook pre {ref.node}: {busy}; deferring {PRE_DEFER_SECONDS} s")
            return PRE_DEFER_CODE
        todo = [d for d, v in letters.items() if v in "_xe"]
        if todo:
            bb.transition(todo, ref.column, "_xe", "w", who=ref.who, message="queued")
    except TransitionConflict:  # moved under our feet: look again later
        return PRE_DEFER_CODE
    except (OwlError, OSFError) as exc:
        print(f"owl hook pre {ref.node}: {exc.line()}")
        return dagman_code(int(exc.code))
    return 0


def post(bb: Blackboard, ref: NodeRef, returncode: int, retry: int, max_retries: int) -> int:
    """After the job: record what the stage could not, mark a pending retry, return DAGMan's code.

    ``returncode`` is DAGMan's ``$RETURN``: negative for a signal (-9), -1001 for a failed
    submission, -1002 for a job removed from the queue.
    """
    code = int(ExitCode.KILLED) if returncode < 0 else returncode
    verdict = dagman_code(code)
    try:
        letters = node_letters(bb, ref.column, ref.dataset)
        if code == 0:
            if set(letters.values()) - {"c", "n"}:
                ref.trailer().warn(f"{ref.who}: job exited 0 but OSF {ref.column} is "
                                   f"{''.join(letters.values())}; the stage did not record completion")
            return 0
        died = [d for d, v in letters.items() if v == "p"]
        if died:  # killed too hard to record anything (SIGKILL, node lost, condor_rm)
            why = f"job ended by signal {-returncode}" if -1000 < returncode < 0 else f"job ended ({returncode})"
            bb.transition(died, ref.column, "p", "x", exit_code=int(ExitCode.KILLED), who=ref.who,
                          message=f"{why} while processing")
            ref.trailer().error(f"{ref.who}: {why} while {ref.column} was 'p'; marked x")
            letters.update(dict.fromkeys(died, "x"))
        unstarted = [d for d, v in letters.items() if v in "_w"]
        if verdict != DAGMAN_FATAL and retry < max_retries and is_retryable(code):
            again = [d for d, v in letters.items() if v in "_wxe"]
            if again:
                bb.transition(again, ref.column, "_wxe", "w", exit_code=code, who=ref.who,
                              message=f"retry {retry + 1} of {max_retries} pending after exit {code} "
                                      f"({meaning(code)})")
            ref.trailer().warn(f"{ref.who}: exit {code} ({meaning(code)}); retry {retry + 1} of {max_retries}")
        elif unstarted:  # failed before the stage moved its column (bad arguments, refused to start)
            bb.transition(unstarted, ref.column, "_w", "e", exit_code=code, who=ref.who,
                          message=f"node failed before the stage started: exit {code} ({meaning(code)})")
            ref.trailer().error(f"{ref.who}: exit {code} ({meaning(code)}) before the stage started")
    except (OwlError, OSFError) as exc:  # the job's outcome still goes back to DAGMan
        print(f"owl hook post {ref.node}: could not record exit {returncode} on the OSF: {exc.line()}")
    return verdict
