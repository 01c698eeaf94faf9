"""Tests for vespo_theory.provenance: run metadata, sidecars and config hashes."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from vespo_theory import provenance
from vespo_theory.params import VespoParams
from vespo_theory.provenance import config_hash, run_metadata, write_sidecar


def test_config_hash_is_order_independent_and_sensitive():
    a = {"k": 2.0, "lam": 3.0, "grid": [0, 1, 2]}
    b = {"grid": [0, 1, 2], "lam": 3.0, "k": 2.0}
    assert config_hash(a) == config_hash(b)
    assert config_hash(a) != config_hash({**a, "k": 2.5})
    assert config_hash(a) != config_hash({**a, "grid": [0, 2, 1]})
    # sha256 of the sorted compact JSON, checked against hashlib directly
    import hashlib

    text = '{"grid":[0,1,2],"k":2.0,"lam":3.0}'
    assert config_hash(a) == hashlib.sha256(text.encode()).hexdigest()


def test_config_hash_accepts_dataclasses_and_numpy():
    p = VespoParams()
    assert config_hash(p) == config_hash(dataclasses.asdict(p))
    assert config_hash({"x": np.float64(1.5), "v": np.arange(3)}) == config_hash(
        {"x": 1.5, "v": [0, 1, 2]}
    )


def test_config_hash_rejects_unserialisable():
    with pytest.raises(TypeError, match="config"):
        config_hash({"f": object()})


def test_run_metadata_fields(tmp_path):
    meta = run_metadata({"n": 3, "w_max": float("inf")}, seed=np.int64(7), device="cpu")
    assert meta["config"] == {"n": 3, "w_max": "inf"}  # a config keeps its inf (a setting)
    assert meta["seed"] == 7 and isinstance(meta["seed"], int)
    assert meta["device"] == "cpu"
    assert meta["config_hash"] == config_hash({"n": 3, "w_max": "inf"})
    v = meta["versions"]
    for name in ("python", "numpy", "scipy", "sympy", "vespo-theory"):
        assert v[name], name
    assert v["numpy"] == np.__version__
    assert "T" in meta["timestamp_utc"] and meta["timestamp_utc"].endswith("+00:00")
    # this test runs inside the project's checkout: a 40-hex SHA (optionally -dirty)
    sha = meta["git_sha"]
    assert sha is not None and len(sha.split("-")[0]) == 40
    json.dumps(meta)  # strict JSON-serialisable


def test_run_metadata_rejects_bad_seed():
    with pytest.raises(TypeError, match="seed"):
        run_metadata({}, seed=1.5)
    with pytest.raises(TypeError, match="seed"):
        run_metadata({}, seed=True)


def test_git_sha_outside_checkout_is_none(tmp_path):
    assert provenance.git_sha(cwd=tmp_path) is None


def test_write_sidecar_roundtrip(tmp_path):
    meta = run_metadata(VespoParams(), seed=0)
    path = write_sidecar(tmp_path / "sub" / "fig.json", meta, wall_time=1.25)
    got = json.loads(path.read_text())
    assert got["wall_time_s"] == 1.25
    assert got["config"] == dataclasses.asdict(VespoParams())
    assert "wall_time_s" not in meta  # the caller's dict is not modified
    assert not list((tmp_path / "sub").glob("*.tmp"))
    with pytest.raises(ValueError, match="wall_time"):
        write_sidecar(tmp_path / "x.json", meta, wall_time=-1.0)
    with pytest.raises(TypeError, match="meta"):
        write_sidecar(tmp_path / "x.json", [1, 2])


def test_imports_without_torch_or_matplotlib():
    code = (
        "import sys\n"
        "sys.modules['torch'] = None\n"
        "sys.modules['matplotlib'] = None\n"
        "from vespo_theory.provenance import run_metadata\n"
        "m = run_metadata({'a': 1})\n"
        "assert 'torch' in m['versions']\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
