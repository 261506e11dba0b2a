"""Error types. Every expected failure is an :class:`XpError` with a message that names
the problem and the fix; the CLI prints it on one line and exits with ``exit_code``."""

from __future__ import annotations


class XpError(Exception):
    """Base class of every error xp expects. ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class UsageError(XpError):
    """A bad option value or argument (exit 2, like click's own usage errors)."""

    exit_code = 2


class SpecError(UsageError):
    """A metric spec, ``--where`` expression or run picker that does not parse or resolve."""


class DataError(XpError):
    """The runs directory holds nothing usable, or a record breaks the format."""


class WriteError(XpError):
    """The writer could not append to its file (disk full, permission denied, ...)."""


class GateError(XpError):
    """A ``--fail-if``/gate condition held: the CI check failed (exit 3)."""

    exit_code = 3
