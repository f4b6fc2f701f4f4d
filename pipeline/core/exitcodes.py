"""The one exit-code table shared by every stage, DAGMan and the local executor.

DAGMan's ``RETRY n UNLESS-EXIT v`` accepts a single value, so the POST hook folds every fatal
code into :data:`DAGMAN_FATAL`; the detailed code still reaches the OSF history and the trailer.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    SUCCESS = 0
    USAGE = 2
    CONFIG = 3
    BAD_INPUT = 20
    MISSING_REFERENCE = 21
    CHECK_FAILED = 22
    UNSUPPORTED = 23
    TRANSIENT_IO = 30
    LOCK_TIMEOUT = 31
    OUT_OF_MEMORY = 32
    CONFLICT = 33
    INTERNAL = 40
    KILLED = 41


@dataclass(frozen=True)
class ExitInfo:
    code: ExitCode
    meaning: str
    retryable: bool


EXIT_TABLE: dict[ExitCode, ExitInfo] = {
    info.code: info
    for info in (
        ExitInfo(ExitCode.SUCCESS, "success", False),
        ExitInfo(ExitCode.USAGE, "bad command line", False),
        ExitInfo(ExitCode.CONFIG, "site configuration invalid or incomplete", False),
        ExitInfo(ExitCode.BAD_INPUT, "bad input data (quarantined)", False),
        ExitInfo(ExitCode.MISSING_REFERENCE, "a reference file is missing or does not match", False),
        ExitInfo(ExitCode.CHECK_FAILED, "a before/after-calibration check failed", False),
        ExitInfo(ExitCode.UNSUPPORTED, "instrument mode not supported", False),
        ExitInfo(ExitCode.TRANSIENT_IO, "transient I/O error (retry)", True),
        ExitInfo(ExitCode.LOCK_TIMEOUT, "database or file lock timeout (retry)", True),
        ExitInfo(ExitCode.OUT_OF_MEMORY, "out of memory (retry, perhaps with more memory)", True),
        ExitInfo(ExitCode.CONFLICT, "OSF column not startable: held, complete or running elsewhere", False),
        ExitInfo(ExitCode.INTERNAL, "unexpected internal error (traceback in the trailer)", False),
        ExitInfo(ExitCode.KILLED, "process killed by a signal", True),
    )
}

#: The single code the DAGMan POST hook returns for every non-retryable failure.
DAGMAN_FATAL = 100


def is_retryable(code: int) -> bool:
    """Whether a failure with this exit code is worth another attempt.

    Codes outside the table (a crashed interpreter, a negative signal status) count as
    retryable: a process that died without saying why may well succeed next time.
    """
    try:
        return EXIT_TABLE[ExitCode(code)].retryable
    except ValueError:
        return code != 0


def meaning(code: int) -> str:
    """One-line meaning of an exit code, including codes outside the table."""
    try:
        return EXIT_TABLE[ExitCode(code)].meaning
    except ValueError:
        if code < 0:
            return f"killed by signal {-code}"
        return f"unknown exit code {code}"


def dagman_code(code: int) -> int:
    """Map a stage exit code to what the POST script returns to DAGMan."""
    if code == 0:
        return 0
    return code if is_retryable(code) else DAGMAN_FATAL
