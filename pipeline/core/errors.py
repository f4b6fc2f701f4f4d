"""Error types that carry an exit code, so library code never decides how a process ends."""

from __future__ import annotations

from pathlib import Path

from pipeline.core.exitcodes import ExitCode


class OwlError(Exception):
    """A failure with a one-line reason and the exit code it deserves.

    ``path`` names the offending file (the stage wrapper quarantines it for :class:`BadInput`);
    ``keyword`` names the header keyword or field at fault, when there is one.
    """

    code: ExitCode = ExitCode.INTERNAL

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        keyword: str | None = None,
        code: ExitCode | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = Path(path) if path is not None else None
        self.keyword = keyword
        if code is not None:
            self.code = code

    def line(self) -> str:
        """The one-line reason shown to operators and written to the trailer."""
        where = f"{self.path.name}: " if self.path is not None and self.path.name not in self.message else ""
        return f"{where}{self.message}"


class ConfigError(OwlError):
    code = ExitCode.CONFIG


class BadInput(OwlError):
    code = ExitCode.BAD_INPUT


class MissingReference(OwlError):
    code = ExitCode.MISSING_REFERENCE


class Unsupported(OwlError):
    code = ExitCode.UNSUPPORTED


class TransientIO(OwlError):
    code = ExitCode.TRANSIENT_IO


class LockTimeout(OwlError):
    code = ExitCode.LOCK_TIMEOUT


class CheckFailed(OwlError):
    """One or more named checks failed; every failure is kept, not only the first."""

    code = ExitCode.CHECK_FAILED

    def __init__(self, failures: list[str], *, path: Path | str | None = None) -> None:
        self.failures = list(failures)
        first = self.failures[0] if self.failures else "no detail"
        more = f" (and {len(self.failures) - 1} more in the trailer)" if len(self.failures) > 1 else ""
        super().__init__(f"{len(self.failures)} check(s) failed; first: {first}{more}", path=path)
