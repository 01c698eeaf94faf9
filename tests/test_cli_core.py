"""`vespo bound` and `vespo derive` through vespo_theory.cli.main, plus the console script."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys

import pytest

from vespo_theory import cli
from vespo_theory.bounds import kernel_bound, phi_max, variance_factor

EPS64 = 2.0**-52  # float64 machine epsilon; u = EPS64 / 2


def test_bound_json_keys_and_values(capsys):
    assert cli.main(["bound", "--k", "2", "--lam", "3", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert list(d) == ["k", "lam", "argmax", "M", "M2", "log_M"]
    assert d == kernel_bound(2, 3).as_dict()  # the CLI prints the library's record unchanged
    # and that record against hand values: argmax = k/lam = 2/3, M = (2/3)^2 e^(3-2) = 4e/9,
    # M2 = 16 e^2 / 81. log M = 2 log(2/3) + 1 rounds by ~3 u (2 |log(2/3)| + 1) ~ 6 u, exp adds
    # 1 u, the reference 4 * e / 9 (e itself rounded) ~3 u: <= 10 u = 1.1e-15 < 8 eps; M2 doubles
    # the exponent's error: 16 eps (seen: 2.2e-16 and 0)
    assert (d["k"], d["lam"], d["argmax"]) == (2.0, 3.0, 2 / 3)
    assert d["M"] == pytest.approx(4 * math.e / 9, rel=8 * EPS64)
    assert d["M2"] == pytest.approx(16 * math.e**2 / 81, rel=16 * EPS64)


def test_bound_table_single(capsys):
    assert cli.main(["bound", "--k", "3", "--lam", "2", "--n", "4"]) == 0
    out = capsys.readouterr().out
    assert "argmax" in out and f"{phi_max(3, 2):.6g}" in out
    assert "for the mean of n = 4 sequences" in out


def test_bound_defaults_both_sign_classes(capsys):
    assert cli.main(["bound"]) == 0
    out = capsys.readouterr().out
    assert "A >= 0" in out and "A < 0" in out
    assert f"{variance_factor():.6g}" in out
    assert cli.main(["bound", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert list(d["pos"]) == ["k", "lam", "argmax", "M", "M2", "log_M"]
    assert (d["pos"]["k"], d["pos"]["lam"], d["neg"]["k"], d["neg"]["lam"]) == (2, 3, 3, 2)
    assert d["variance_factor"] == variance_factor()


@pytest.mark.parametrize(
    "argv, msg",
    [
        (["--k", "abc", "--lam", "3"], "expected a number, got 'abc'"),
        (["--k", "2", "--lam", "-1"], "must be a finite number > 0"),
        (["--k", "nan", "--lam", "1"], "must be a finite number > 0"),
        (["--n", "x"], "expected an integer"),
    ],
)
def test_bound_non_numeric_exits_2(capsys, argv, msg):
    with pytest.raises(SystemExit) as exc:
        cli.main(["bound", *argv])
    assert exc.value.code == 2
    assert msg in capsys.readouterr().err


def test_bound_k_without_lam_exits_2(capsys):
    assert cli.main(["bound", "--k", "2"]) == 2
    assert "--k and --lam must be given together" in capsys.readouterr().err


def test_derive_only_k3_json(capsys):
    assert cli.main(["derive", "--only", "K3", "--json"]) == 0
    (d,) = json.loads(capsys.readouterr().out)
    assert list(d) == ["id", "statement", "assumptions", "method", "status", "detail", "seconds"]
    assert d["id"] == "K3" and d["status"] == "verified"


def test_console_script_subprocess():
    exe = shutil.which("vespo")
    argv = [exe] if exe else [sys.executable, "-m", "vespo_theory.cli"]
    res = subprocess.run(
        [*argv, "bound", "--k", "2", "--lam", "3", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["M"] == kernel_bound(2, 3).M
    bad = subprocess.run(
        [*argv, "bound", "--k", "two", "--lam", "3"], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2 and "expected a number" in bad.stderr


def test_bound_overflow_is_null_in_json_with_a_finite_log_and_a_note(capsys):
    # k = 1000, lam = 1: log M = 1000 log 1000 + 1 - 1000 = 5908.755..., beyond float64's 709.78
    assert cli.main(["bound", "--k", "1000", "--lam", "1", "--json"]) == 0
    text = capsys.readouterr().out
    assert "Infinity" not in text and '"inf"' not in text  # strict JSON: no inf of any spelling
    d = json.loads(text)
    assert d["M"] is None and d["M2"] is None
    # the reference is fsum-free: 1000 * log(1000) rounds by <= 1 u relative (~6e3 * 1.1e-16)
    assert d["log_M"] == pytest.approx(1000 * math.log(1000) + 1 - 1000, rel=4 * EPS64)
    assert cli.main(["bound", "--k", "1000", "--lam", "1"]) == 0
    out = capsys.readouterr().out
    assert "M, M2 exceed the float64 range" in out
    # log M = 1000 ln 1000 - 999 = 5908.755278982137..., log M^2 twice that; printed to 10 digits
    assert "log M = 5908.755279, log M^2 = 11817.51056" in out
    # only M^2 overflows where log M lies in (log(max)/2, log(max)] = (354.9, 709.8]: k = 100,
    # lam = 1 gives log M = 100 ln 100 - 99 = 361.517...: M is printed, M2 is not
    assert cli.main(["bound", "--k", "100", "--lam", "1"]) == 0
    out = capsys.readouterr().out
    assert "note: M2 exceeds the float64 range" in out
    assert "inf * E||g||^2" not in out  # the factor is written as exp(log M^2), not inf


def test_memory_limit_flag_is_validated_and_exported(capsys, monkeypatch):
    from vespo_theory import resources

    with pytest.raises(SystemExit) as exc:
        cli.main(["--memory-limit", "lots", "bound"])
    assert exc.value.code == 2 and "--memory-limit" in capsys.readouterr().err
    monkeypatch.delenv(resources.ENV_VAR, raising=False)
    assert cli.main(["--memory-limit", "3G", "bound"]) == 0
    assert resources.memory_limit() == 3 * 1024**3


def test_unusable_out_is_one_line_and_exit_2(tmp_path):
    from vespo_theory.cli.common import usable_out_dir

    a_file = tmp_path / "f"
    a_file.write_text("x")
    for bad, msg in ((a_file, "is not a folder"), (a_file / "sub", "cannot create folder")):
        with pytest.raises(ValueError, match=msg) as exc:
            usable_out_dir(bad, "--out")
        assert str(exc.value).startswith("--out: ") and "\n" not in str(exc.value)
    assert usable_out_dir(tmp_path / "new" / "deep").is_dir()
