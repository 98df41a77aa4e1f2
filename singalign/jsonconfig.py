"""``to_dict``/``from_dict`` for the frozen config dataclasses whose tuple fields travel as JSON lists.

A config (``LogMelConfig``, ``LMConfig``, ``HeadConfig``, ``TextSampleConfig``, ...) is stored in
bundles and run folders as JSON, where tuples become lists; reading it back must give the same
(hashable, frozen) config. A field whose default is a tuple is a tuple field.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any


class JsonConfig:
    """Mixin for a dataclass: ``to_dict`` (tuples as lists) and ``from_dict`` (lists back to tuples)."""

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        tuples = {f.name for f in fields(cls) if isinstance(f.default, tuple)}
        return cls(**{k: tuple(v) if k in tuples else v for k, v in d.items()})
