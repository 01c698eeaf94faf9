"""``vespo simulate`` and ``vespo sweep`` end to end through the CLI entry point."""

from __future__ import annotations

import json

import pytest

from vespo_theory.cli import main

KEYS = {
    "rule",
    "bias_norm",
    "cosine",
    "var_trace",
    "E_phi",
    "E_phi2",
    "ess",
    "khat",
    "bound_M2",
    "bound_holds",
    "method",
}


def _json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_bandit_json(capsys):
    out = _json(
        capsys,
        [
            "simulate",
            "bandit",
            "--mu",
            "0.5,0.3,0.2",
            "--pi",
            "0.3,0.3,0.4",
            "--reward",
            "1,-1,0.5",
            "--rule",
            "is",
            "--rule",
            "vespo",
            "--mc",
            "2000",
            "--json",
        ],
    )
    assert [(r["rule"], r["method"]) for r in out] == [
        ("is", "enumeration"),
        ("vespo", "enumeration"),
        ("is", "mc"),
        ("vespo", "mc"),
    ]
    for r in out:
        assert KEYS <= set(r)
    assert "se" in out[2] and "se" not in out[0]
    assert out[1]["bound_holds"] is True and out[0]["bound_M2"] is None
    # IS is unbiased exactly; what is left is float rounding of two 3-term sums of products of
    # O(1) numbers (|grad| < 0.5): a few u = 1.1e-16 each (5.7e-17 seen); 1e-15 is 9 u
    assert abs(out[0]["bias_norm"]) < 1e-15


def test_ar_json_enumeration_lattice_mc(capsys):
    out = _json(
        capsys,
        [
            "simulate",
            "ar",
            "--V",
            "3",
            "--T",
            "4",
            "--policy",
            "markov",
            "--staleness",
            "2",
            "--rule",
            "vespo,gspo",
            "--json",
        ],
    )
    assert [r["method"] for r in out] == ["enumeration"] * 2 and KEYS <= set(out[0])
    out = _json(
        capsys,
        [
            "simulate",
            "ar",
            "--mu",
            "0.5,0.5",
            "--pi",
            "0.4,0.6",
            "--T",
            "500",
            "--adv-constant",
            "1",
            "--exact",
            "--rule",
            "vespo",
            "--json",
        ],
    )
    assert out[0]["method"] == "lattice" and out[0]["cosine"] is None
    out = _json(
        capsys,
        [
            "simulate",
            "ar",
            "--V",
            "4",
            "--T",
            "5",
            "--policy",
            "prefix",
            "--mismatch",
            "bf16",
            "--flip-prob",
            "0.1",
            "--mc",
            "3000",
            "--rule",
            "vespo",
            "--json",
        ],
    )
    assert out[0]["method"] == "mc" and set(out[0]["se"]) >= {"E_phi", "var_trace"}


def test_ar_table(capsys):
    assert main(["simulate", "ar", "--V", "3", "--T", "3", "--rule", "vespo"]) == 0
    text = capsys.readouterr().out
    assert "method: enumeration" in text and "E[W] = 1" in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["simulate", "ar", "--staleness", "-1"], "staleness must be an integer >= 0"),
        (["simulate", "ar", "--mu", "0.5,0.4", "--pi", "0.5,0.5"], "mu must sum to 1"),
        (["simulate", "ar", "--mu", "0,1", "--pi", "0.5,0.5"], "mu = 0 where pi > 0"),
        (["simulate", "ar", "--V", "8", "--T", "12", "--exact"], "no exact method applies"),
        (["simulate", "ar", "--mu", "0.5,0.5"], "--mu and --pi must be given together"),
        (
            ["simulate", "bandit", "--mu", "0.5,0.5", "--pi", "0.2,0.2", "--reward", "1,0"],
            "pi must sum to 1",
        ),
        (["simulate", "ar", "--rule", "ppo"], "unknown rule 'ppo'"),
    ],
)
def test_bad_input_exit_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_sweep_cli_runs_and_resumes(tmp_path, capsys):
    cfg = {
        "kind": "ar",
        "base": {"V": 4, "drift": "lattice", "adv_mode": "constant"},
        "grid": {"T": [1, 50], "staleness": [1]},
        "rules": ["is", "vespo"],
        "method": "lattice",
    }
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(cfg))
    argv = [
        "sweep",
        str(path),
        "--out",
        str(tmp_path / "out"),
        "--backend",
        "serial",
        "--no-progress",
    ]
    assert main(argv) == 0
    assert "2 computed, 0 from cache" in capsys.readouterr().out
    assert main(argv) == 0
    assert "0 computed, 2 from cache" in capsys.readouterr().out
    assert (tmp_path / "out" / "results.csv").exists()
    assert (tmp_path / "out" / "results.json").exists()
    assert main(["sweep", str(tmp_path / "missing.json"), "--out", str(tmp_path)]) == 2
