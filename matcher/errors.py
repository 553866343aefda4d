"""Domain exceptions. The API turns them into JSON errors, the CLI into a message and an exit code."""

from __future__ import annotations


class RelaisError(Exception):
    """Base class: ``status`` and ``code`` say how the edges should report it (``headers``: HTTP headers to add)."""

    status = 500
    code = "internal_error"
    headers: dict[str, str] = {}

    def __init__(self, message: str, fields: dict | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields


class InvalidRequestError(RelaisError):
    """The request is well formed but asks for something that cannot be done."""

    status = 400
    code = "invalid_request"


class MalformedJSONError(InvalidRequestError):
    """The request body is not JSON."""

    code = "malformed_json"


class IncompleteBodyError(InvalidRequestError):
    """The request body is not all there (shorter than its Content-Length, or a broken chunked encoding)."""

    code = "incomplete_body"


class UnknownMomentError(InvalidRequestError):
    """The moment is not in the moments file."""

    code = "unknown_moment"

    def __init__(self, moment: str, known: list[str]):
        super().__init__(
            f"Unknown moment {moment!r}; valid moments are: {', '.join(known)}.",
            {"moment": [f"Must be one of: {', '.join(known)}."]},
        )


class UnauthorizedError(RelaisError):
    """No API key, or one that is unknown or revoked."""

    status = 401
    code = "unauthorized"
    headers = {"WWW-Authenticate": 'Bearer realm="relais"'}


class ForbiddenError(RelaisError):
    """A valid key that may not do this (its role), or a widget key used from an origin it is not bound to."""

    status = 403
    code = "forbidden"


class TooManyRequestsError(RelaisError):
    """A key (or an address, without one) over its rate limit."""

    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after)}


class NotFoundError(RelaisError):
    """Record not found."""

    status = 404
    code = "not_found"


class ConflictError(RelaisError):
    """The record already exists (create with POST), or the request contradicts itself."""

    status = 409
    code = "conflict"


class StorageFullError(RelaisError):
    """The disk holding the data dir is full (or over quota): nothing was written."""

    status = 507
    code = "insufficient_storage"


class StorageReadOnlyError(RelaisError):
    """The data dir cannot be written (a read-only disk or file): nothing was written."""

    status = 503
    code = "storage_read_only"


def storage_error(e: BaseException, where: object) -> RelaisError | None:
    """What a failed write to ``where`` (the data dir) means for a caller, if it is the storage's fault: SQLite's
    'database or disk is full' and ENOSPC are a full disk, 'readonly database' and EROFS a read-only one."""
    import errno
    import sqlite3

    text = str(e).lower()
    full = isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)
    full = full or (isinstance(e, sqlite3.OperationalError) and "disk is full" in text)
    if full:
        return StorageFullError(f"The disk holding {where} is full: nothing was written. Free some space, then retry.")
    read_only = isinstance(e, OSError) and e.errno == errno.EROFS
    read_only = read_only or (isinstance(e, sqlite3.OperationalError) and "readonly" in text)
    if read_only:
        return StorageReadOnlyError(f"{where} cannot be written (read-only): nothing was written.")
    return None


class ConfigError(RelaisError):
    """A data file or setting is wrong; the message says which and how to fix it."""

    code = "config_error"


class IndexMismatchError(RelaisError):
    """An index file does not belong to this database or this model."""

    code = "index_mismatch"
