"""Errors a user can act on. The CLI prints them as one line and exits non-zero."""


class SingalignError(Exception):
    """Base class for errors that name their cause in one line."""


class AudioError(SingalignError):
    """An audio input is missing, unreadable, empty, silent or otherwise unusable."""


class BundleError(SingalignError):
    """A bundle directory is missing, incomplete, or fails its checksum."""


class MissingWeightsError(SingalignError):
    """A weights file is not on disk (hubs are not reachable at run time)."""


def file_error(path: str, exc: BaseException) -> str:
    """The one line a command prints when one input file fails (and it goes on with the others).

    A ``SingalignError`` already names its file and cause; anything else is unexpected, so the
    path and the exception's type are added.
    """
    if isinstance(exc, SingalignError):
        return str(exc)
    return f"{path}: {type(exc).__name__}: {exc}"
