"""Sharding per-file work: parsing, partition, stability."""

from __future__ import annotations

import pytest

from singalign.data.shards import parse_shard, shard_items, shard_of
from singalign.errors import SingalignError


def test_parse_shard() -> None:
    assert parse_shard("0/4") == (0, 4)
    assert parse_shard(" 3 / 4 ") == (3, 4)
    assert parse_shard("0/1") == (0, 1)
    for bad, message in (
        ("4/4", r"index must be in 0\.\.3"),
        ("1/0", "at least 1"),
        ("a/4", "expected 'i/n'"),
        ("-1/4", "expected 'i/n'"),
        ("2", "expected 'i/n'"),
        ("", "expected 'i/n'"),
    ):
        with pytest.raises(SingalignError, match=message):
            parse_shard(bad)


def test_by_position() -> None:
    items = list(range(10))
    assert shard_items(items, "1/3") == [1, 4, 7]
    assert shard_items(items, (2, 3)) == [2, 5, 8]
    assert shard_items(items, None) == items
    parts = [shard_items(items, f"{i}/3") for i in range(3)]
    assert sorted(x for p in parts for x in p) == items


def test_by_key_is_stable_and_partitions() -> None:
    # CRC-32 of b"a" is 0xE8B7BE43, which is 3 mod 4.
    assert shard_of("a", 4) == 3
    ids = [f"song{k:04d}" for k in range(200)]
    parts = [shard_items(ids, f"{i}/4", key=str) for i in range(4)]
    assert sorted(x for p in parts for x in p) == ids
    assert all(30 <= len(p) <= 70 for p in parts)  # roughly balanced
    # Adding items never moves an existing one to another shard.
    grown = [shard_items(ids + ["new1", "new2"], f"{i}/4", key=str) for i in range(4)]
    assert all(set(p) <= set(g) for p, g in zip(parts, grown, strict=True))
