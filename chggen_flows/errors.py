"""One exception hierarchy for failures a user can fix.

Every error raised for bad input, bad configuration or an unreachable service derives
from :class:`ChggenError`. The CLI prints ``message`` and ``hint`` and exits with
``exit_code`` (2 for bad input); anything else is a bug and keeps its traceback
(shown with ``--debug``).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence


class ChggenError(Exception):
    """Base class of user-facing errors.

    Parameters
    ----------
    message
        What went wrong, in one sentence.
    hint
        What the user can do about it.
    """

    exit_code: int = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"


class InputError(ChggenError, ValueError):
    """Invalid user input: a composition, a structure file, a spec, a command option."""


class ConfigError(ChggenError):
    """Invalid or unreadable configuration (YAML file, environment variables)."""


class DatabaseError(ChggenError):
    """The database cannot be reached, authenticated against or started."""


class CheckpointError(ChggenError):
    """A model checkpoint is missing, truncated, corrupt or of a foreign format."""


class ReferenceDataError(ChggenError):
    """Reference phase-diagram data is missing or unusable for a chemical system."""


class PotentialMismatchError(ReferenceDataError):
    """Energies from one interatomic potential set against a hull made by another."""


class CampaignError(ChggenError):
    """A campaign cannot be submitted, found, resumed or queried."""


class ResourceError(ChggenError):
    """The machine lacks what a job needs: GPU memory, worker processes."""


def closest_key(key: object, allowed: Sequence[str]) -> str | None:
    """The allowed key a mistyped ``key`` most likely meant (difflib), or None."""
    matches = difflib.get_close_matches(str(key), list(allowed), n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown_key_message(key: object, allowed: Sequence[str], what: str = "key") -> str:
    """``unknown key 'n_level'; did you mean 'n_levels'? (allowed: ...)``."""
    guess = closest_key(key, allowed)
    message = f"unknown {what} {key!r}"
    if guess is not None:
        message += f"; did you mean {guess!r}?"
    return f"{message} (allowed: {', '.join(allowed) or 'none'})"
