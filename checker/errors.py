"""Every error the checker raises on bad input.

Each message starts with the file or object it is about, so the CLI can print it
as one line (``fromscratch: <message>``) and exit with code 2. The engine never
prints or exits; it raises one of these.
"""

from __future__ import annotations


class CheckerError(Exception):
    """Base class: bad input the user can act on (exit code 2)."""

    def __init__(self, subject: str, reason: str) -> None:
        self.subject = str(subject)
        self.reason = reason
        super().__init__(f"{self.subject}: {reason}")


class WeightsError(CheckerError):
    """A checkpoint cannot be read (missing, corrupt, unsafe or unsupported)."""


class LocatedError(CheckerError):
    """A declarative file is malformed: carries the file, the YAML line and the JSON path."""

    def __init__(self, path: str, reason: str, line: int | None = None, json_path: str = "") -> None:
        self.path = str(path)
        self.line = line
        self.json_path = json_path
        subject = f"{path}:{line}" if line is not None else str(path)
        where = f" (at {json_path})" if json_path else ""
        super().__init__(subject, f"{reason}{where}")


class ModuleMapError(LocatedError):
    """A module map (rules/modules/*.yaml) is malformed."""


class RulePackError(LocatedError):
    """A rule pack is malformed."""


class WaiverError(LocatedError):
    """A waiver file is malformed."""


class RegistryError(CheckerError):
    """A registry folder or entry is missing, malformed or inconsistent."""


class ReferenceFetchError(CheckerError):
    """A reference model could not be fetched (offline, unknown repo, no weights)."""


class ScanError(CheckerError):
    """A license, model-card, lineage or tokenizer file cannot be parsed."""


class ReportError(CheckerError):
    """A report could not be produced or does not match its schema."""


class UsageError(CheckerError):
    """An option the environment cannot honour (a device that is absent, an extra not installed)."""
