"""Errors the pipeline raises; the transport maps :class:`ErrorKind` to its own status codes."""

from __future__ import annotations

import enum


class ErrorKind(enum.Enum):
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    NOT_FOUND = "NOT_FOUND"
    UNAVAILABLE = "UNAVAILABLE"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    #: the stream lost its session to a newer stream (a resume); it must end
    ABORTED = "ABORTED"


class StreamError(Exception):
    """A request the pipeline refuses; ``message`` names the field and the allowed range."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def invalid(message: str) -> StreamError:
    return StreamError(ErrorKind.INVALID_ARGUMENT, message)
