"""Refusals the library gives: each message is one line a person can act on."""


class LibraryError(Exception):
    """An operation the library refuses. The CLI prints the message and exits 1."""


class NotFound(LibraryError):
    pass


class Conflict(LibraryError):
    pass
