"""Errors a user can act on. The CLI prints them as one line and exits non-zero."""


class SingalignError(Exception):
    """Base class for errors that name their cause in one line."""


class AudioError(SingalignError):
    """An audio input is missing, unreadable, empty, silent or otherwise unusable."""


class BundleError(SingalignError):
    """A bundle directory is missing, incomplete, or fails its checksum."""


class MissingWeightsError(SingalignError):
    """A weights file is not on disk (hubs are not reachable at run time)."""
