"""Error types. Every expected failure is an :class:`XpError` with a message that names
the problem and the fix; the CLI prints it on one line and exits with ``exit_code``."""

from __future__ import annotations

from collections.abc import Iterable


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


#: How many known names an "unknown name" message lists when nothing is close.
SHOWN_NAMES = 5


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """The hint after an unknown ``word``: ``did you mean 'lr'?`` for the closest known
    name, else the first few known names (``known: a, b, c, d, e and 12 more``)."""
    import difflib

    names = list(dict.fromkeys(str(k) for k in known))
    close = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    if not close:  # a case slip (LR for lr) is close whatever its length
        close = [n for n in names if n.lower() == word.lower()][:1]
    if close:
        return f"did you mean {close[0]!r}?"
    if not names:
        return "there are none"
    if len(names) <= SHOWN_NAMES + 2:  # "and 1 more" would be longer than the name
        return "known: " + ", ".join(names)
    return "known: " + ", ".join(names[:SHOWN_NAMES]) + f" and {len(names) - SHOWN_NAMES} more"


def unknown_name(option: str, what: str, name: str, known: Iterable[str]) -> UsageError:
    """``--by: unknown param 'lrr'; did you mean 'lr'?`` (the error to raise)."""
    prefix = f"{option}: " if option else ""
    return UsageError(f"{prefix}unknown {what} {name!r}; {did_you_mean(name, known)}")
