"""Exceptions that name the condition. Messages are written for the person who hit them."""

from __future__ import annotations


class DimnbError(Exception):
    """Base class: every error dimnb raises on purpose. Its message is safe to show a user."""


class NotInitialized(DimnbError):
    """The data directory has no stores yet (run ``dimnb init``)."""


class InvalidInput(DimnbError):
    """A value given by a person (a filter, a file, an option) is not acceptable.

    ``field`` names what was wrong, so a form can point at it.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class DirectoryError(InvalidInput):
    """A directory file breaks a rule (overlapping primary groups, unknown group, ...)."""


class UnknownUser(DimnbError):
    """No active user has that login."""


class NotFound(DimnbError):
    """The thing does not exist, *or* the actor may not see it: the two are never told apart."""


class StoreBusy(DimnbError):
    """Another writer holds the call store for longer than we were willing to wait."""
