"""Split per-file work across machines: ``--shard i/n`` runs the i-th of n shares.

Shard indices are 0-based: ``0/4``, ``1/4``, ``2/4``, ``3/4`` together cover everything once.

Assignment: by default item ``k`` of the list goes to shard ``k mod n`` (balanced to within one
item). That is stable only if every machine builds the same list in the same order, so recipes
pass sorted lists (manifests are). When the list may differ between machines or grow between
runs (new files appearing), pass ``key`` (e.g. the record id or the file path): the item then
goes to shard ``crc32(key) mod n``, which depends on nothing but the key (Python's ``hash`` is
salted per process and would differ between machines, so it is not used).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterable
from typing import TypeVar

from singalign.errors import SingalignError

T = TypeVar("T")

_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``"i/n"`` (0-based ``i``) into ``(i, n)``.

    Raises:
        SingalignError: not of the form ``i/n`` with integers ``0 <= i < n``.
    """
    match = _SHARD.fullmatch(text) if isinstance(text, str) else None
    if not match:
        raise SingalignError(f"shard {text!r}: expected 'i/n' with whole numbers, e.g. '0/4' (0-based)")
    i, n = int(match.group(1)), int(match.group(2))
    if n < 1:
        raise SingalignError(f"shard {text!r}: the number of shards must be at least 1")
    if i >= n:
        raise SingalignError(f"shard {text!r}: index must be in 0..{n - 1} (shards are 0-based)")
    return i, n


def shard_of(key: str, n: int) -> int:
    """The shard (0..n-1) of ``key``, the same on every machine and in every run."""
    return zlib.crc32(key.encode("utf-8")) % n


def shard_items(
    items: Iterable[T], shard: str | tuple[int, int] | None, key: Callable[[T], str] | None = None
) -> list[T]:
    """The items of one shard, in their original order.

    Args:
        items: the full work list (sorted, when ``key`` is None).
        shard: ``"i/n"``, ``(i, n)``, or None for everything.
        key: a stable name per item; None assigns by position (``k mod n``).
    """
    items = list(items)
    if shard is None:
        return items
    i, n = parse_shard(shard) if isinstance(shard, str) else parse_shard(f"{shard[0]}/{shard[1]}")
    if key is None:
        return [item for k, item in enumerate(items) if k % n == i]
    return [item for item in items if shard_of(key(item), n) == i]
