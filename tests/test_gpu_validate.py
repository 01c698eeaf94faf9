"""benchmarks/gpu_validate.py and .sh: the CPU (--tiny) variant of the GPU validation script."""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import subprocess
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "gpu_validate.py"
SMALL = ["--tiny", "--n", "16", "--warm-steps", "2", "--grad-seqs", "16"]


def _module():
    spec = importlib.util.spec_from_file_location("gpu_validate", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gv")
    rc = _module().main([*SMALL, "--out", str(out / "a")])
    return rc, out


def test_tiny_variant_writes_records_and_bounds_hold(tiny_run):
    rc, out = tiny_run
    assert rc == 0
    doc = json.loads((out / "a" / "gpu_validate.json").read_text())
    assert doc["settings"]["preset"] == "tiny" and doc["device"] == "cpu"
    assert doc["b2_p4_hold_pointwise"] is True
    recs = doc["records"]
    assert {r["advantage"] for r in recs} == {"score", "grpo"}
    assert [r["length_bin"] for r in recs][-2:] == ["all", "all"]
    assert sum(r["n"] for r in recs if r["length_bin"] != "all") == 2 * 16
    for r in recs:
        # B2 and P4 hold sample by sample (phi <= M, phi <= K W); 1e-12 relative: float64
        # rounding of exp/log in phi, far below any real violation
        assert r["E_phi2_pos"] <= r["M2_pos"] * (1 + 1e-12)
        assert r["E_phi2_pos"] <= r["K_E_phiW_pos"] * (1 + 1e-12)
        assert r["E_phi2_neg"] <= r["K_E_phiW_neg"] * (1 + 1e-12)
        # B3: tr Cov <= E[phi^2 A^2 |g|^2] <= M^2 E[A^2 |g|^2]; 1e-9 relative: the running
        # float64 sums of float32 gradients (~1e-7 relative each) cancel in tr Cov only
        assert r["var_trace"] <= r["E_phi2_A2_g2"] * (1 + 1e-9) + 1e-9
        assert r["E_phi2_A2_g2"] <= r["bound_B3"] * (1 + 1e-9)
        assert r["E_g2"] > 0 and math.isfinite(r["E_g2"])
    assert (out / "a" / "gpu_validate.csv").read_text().startswith("rule,advantage,length_bin,")


def test_same_seed_same_numbers(tiny_run):
    _, out = tiny_run
    assert _module().main([*SMALL, "--out", str(out / "b")]) == 0
    a = json.loads((out / "a" / "gpu_validate.json").read_text())["records"]
    b = json.loads((out / "b" / "gpu_validate.json").read_text())["records"]
    assert a == b


@pytest.mark.parametrize(
    "args, word",
    [
        (["--group", "3"], "--group"),
        (["--n", "0"], "--n"),
        (["--task", "nope"], "task"),
        (["--device", "tpu"], "--device"),
    ],
)
def test_bad_input_one_line_exit_2(tmp_path, capsys, args, word):
    assert _module().main(["--tiny", "--out", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and word in err[0]


def test_memory_estimate_refuses_past_the_limit(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VESPO_MEMORY_LIMIT", "1M")
    assert _module().main(["--tiny", "--out", str(tmp_path / "o")]) == 2
    assert "memory limit" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_shell_script_refuses_without_gpu_and_runs_tiny(tmp_path):
    sh = REPO / "benchmarks" / "gpu_validate.sh"
    if not torch.cuda.is_available():
        p = subprocess.run(["bash", str(sh), str(tmp_path / "g")], capture_output=True, text=True)
        assert p.returncode == 2 and "no CUDA GPU" in p.stderr
    p = subprocess.run(
        ["bash", str(sh), "--tiny", str(tmp_path / "t"), "--n", "8", "--warm-steps", "1"],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    assert (tmp_path / "t" / "gpu_validate.json").exists()
