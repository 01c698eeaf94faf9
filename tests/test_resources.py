"""Memory estimates refused before allocating (vespo_theory.resources)."""

from __future__ import annotations

import math

import pytest

from vespo_theory import resources
from vespo_theory.resources import MemoryLimitError, check_memory, format_count, parse_bytes


@pytest.mark.parametrize(
    "text, want",
    [("1024", 1024), ("4K", 4096), ("1.5G", int(1.5 * 2**30)), ("2gib", 2 * 2**30), (512, 512)],
)
def test_parse_bytes(text, want):
    assert parse_bytes(text) == want


@pytest.mark.parametrize("bad", ["", "G", "x1G", "-1G", "0", "nan", "inf"])
def test_parse_bytes_refuses(bad):
    with pytest.raises(ValueError, match="memory limit"):
        parse_bytes(bad)


def test_check_memory_edge():
    check_memory(100, "t", "c", limit=100)  # at the limit: allowed (the limit is inclusive)
    with pytest.raises(MemoryLimitError, match="over the memory limit of 100 B: lower T"):
        check_memory(101, "t", "lower T", limit=100)
    with pytest.raises(MemoryLimitError, match="an unbounded amount"):
        check_memory(math.inf, "t", "c", limit=100)
    # a Python int past the float range (V^T) is compared exactly, and formatted without error
    with pytest.raises(MemoryLimitError):
        check_memory(32000**4096, "t", "c", limit=100)


def test_limit_from_environment_and_default(monkeypatch):
    monkeypatch.setenv(resources.ENV_VAR, "2M")
    assert resources.memory_limit() == 2 * 2**20
    monkeypatch.delenv(resources.ENV_VAR)
    avail = resources.available_memory()
    assert avail > 0 and resources.memory_limit() == int(resources.DEFAULT_FRACTION * avail)


def test_format_count_huge_int():
    # 32000^4096 = 10^(4096 log10 32000) = 10^18453.094 = 1.24e18453: through log10, no overflow
    assert format_count(32000**4096) == "1.24e+18453"
    assert format_count(1_048_576) == "1.05e+06"


def test_format_bytes_any_size():
    assert resources.format_bytes(3 * 2**30) == "3.00 GiB"
    assert resources.format_bytes(2**50 * 3) == "3.07e+03 TiB"
    assert resources.format_bytes(32000**4096) == "1.13e+18441 TiB"  # 10^(18453.094 - 12.041)
