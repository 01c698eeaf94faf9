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
KERNEL_KEYS = ["k", "lam", "argmax", "M", "M2", "log_M", "argmax_K", "K", "log_K", "K_finite"]


def test_bound_json_keys_and_values(capsys):
    assert cli.main(["bound", "--k", "2", "--lam", "3", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert list(d) == KERNEL_KEYS
    assert d == kernel_bound(2, 3).as_dict()  # the CLI prints the library's record unchanged
    # and that record against hand values: argmax = k/lam = 2/3, M = (2/3)^2 e^(3-2) = 4e/9,
    # M2 = 16 e^2 / 81. log M = 2 log(2/3) + 1 rounds by ~3 u (2 |log(2/3)| + 1) ~ 6 u, exp adds
    # 1 u, the reference 4 * e / 9 (e itself rounded) ~3 u: <= 10 u = 1.1e-15 < 8 eps; M2 doubles
    # the exponent's error: 16 eps (seen: 2.2e-16 and 0)
    assert (d["k"], d["lam"], d["argmax"]) == (2.0, 3.0, 2 / 3)
    assert d["M"] == pytest.approx(4 * math.e / 9, rel=8 * EPS64)
    assert d["M2"] == pytest.approx(16 * math.e**2 / 81, rel=16 * EPS64)
    # P4 (arXiv 2602.10693 Eqs. 18-19): argmax_K = (k-1)/lam = 1/3, K = (1/3) e^2, log K =
    # 2 - log 3; log K rounds by ~4 u, exp adds 1 u, the reference e^2 / 3 2 u: 8 eps
    assert (d["argmax_K"], d["K_finite"]) == (1 / 3, True)
    assert d["K"] == pytest.approx(math.e**2 / 3, rel=8 * EPS64)
    assert d["log_K"] == pytest.approx(2 - math.log(3), abs=4 * EPS64)


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
    assert list(d["pos"]) == list(d["neg"]) == KERNEL_KEYS
    assert "lognormal" not in d  # only with --log-normal
    assert (d["pos"]["k"], d["pos"]["lam"], d["neg"]["k"], d["neg"]["lam"]) == (2, 3, 3, 2)
    assert d["variance_factor"] == variance_factor()
    # K(2,3) = e^2/3, K(3,2) = 1 exactly (log K = 2 log 1 + 2 - 3 + 1 = 0)
    assert d["neg"]["K"] == 1.0 and d["neg"]["argmax_K"] == 1.0
    assert d["pos"]["K"] == pytest.approx(math.e**2 / 3, rel=8 * EPS64)


def test_bound_prints_B2_P4_and_B3_lines(capsys):
    assert cli.main(["bound"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["class", "k", "lam", "argmax", "M", "M2", "argmax_K", "K"]
    # the K column: (2,3) -> e^2/3 = 2.46302 at (k-1)/lam = 1/3; (3,2) -> 1 at W = 1
    assert lines[2].split()[-2:] == ["0.333333", "2.46302"]
    assert lines[3].split()[-2:] == ["1", "1"]
    assert (
        "B2: E_mu[phi^2] <= M E_mu[phi] <= M^2   (A >= 0: M^2 = 1.45957; A < 0: M^2 = 1.54155)"
        in out
    )
    assert (
        "P4: E_mu[phi^2] <= K E_mu[phi W] = Z K E_Q[W]   (A >= 0: K = 2.46302; A < 0: K = 1)" in out
    )
    assert "<= Z K C if Q = mu phi / Z (Z = E_mu[phi]) has E_Q[W] <= C" in out
    assert "B3: Var[phi(W) g] <= 1.54155 * E||g||^2 per sample" in out
    assert cli.main(["bound", "--k", "2", "--lam", "3"]) == 0
    out = capsys.readouterr().out
    assert "(M^2 = 1.45957)" in out and "(K = 2.46302)" in out  # one kernel: no class labels


def test_bound_k_below_one_says_K_is_infinite(capsys):
    assert cli.main(["bound", "--k", "0.5", "--lam", "1", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    # K = log K = inf (JSON null, like an overflowing M), not attained, and flagged as infinite
    assert (d["K"], d["log_K"], d["argmax_K"], d["K_finite"]) == (None, None, None, False)
    assert d["M"] == pytest.approx(phi_max(0.5, 1), rel=0)  # B2 is unaffected
    assert cli.main(["bound", "--k", "0.5", "--lam", "1"]) == 0
    out = capsys.readouterr().out
    p4 = [line for line in out.splitlines() if "P4" in line]
    assert p4 == [
        "P4: K = sup phi(W)/W is infinite for k = 0.5 < 1 (phi/W -> inf as W -> 0+): "
        "P4 gives no bound"
    ]
    assert "B2: E_mu[phi^2] <= M E_mu[phi] <= M^2" in out and "B3:" in out
    # k = 1: K = e^lam, the limit W -> 0+ (argmax column "0+", JSON null)
    assert cli.main(["bound", "--k", "1", "--lam", "2"]) == 0
    out = capsys.readouterr().out
    assert f"0+        {math.exp(2):.6g}" in out and "(K = 7.38906)" in out


def test_bound_log_normal_defaults(capsys):
    """E[phi] under log W ~ N(-1/2, 1): 0.704483 (2,3) and 0.504502 (3,2) (docs/kernels.md);
    E[phi^2] = 0.659519 / 0.438402, K E[phi W] = 1.18363 / 0.616688: both below M^2, so the
    smaller of P4 and M^2 is P4 for both classes (values from tests/test_bounds.py's checked
    quadrature, printed to 6 digits)."""
    assert cli.main(["bound", "--log-normal", "1"]) == 0
    out = capsys.readouterr().out
    assert "log W ~ N(-S2/2, S2), S2 = 1 (E[W] = 1)" in out
    rows = {line.split()[1]: line.split() for line in out.splitlines() if line.startswith("A ")}
    # "A", ">=", "0", then E[phi], E[phi^2], M E[phi], M^2, E[phi W], K E[phi W], smaller
    assert rows[">="][3:7] == ["0.704483", "0.659519", "0.851103", "1.45957"]
    assert rows[">="][7:] == ["0.480562", "1.18363", "P4:", "K", "E[phi", "W]"]
    assert rows["<"][3:7] == ["0.504502", "0.438402", "0.626386", "1.54155"]
    assert rows["<"][7:9] == ["0.616688", "0.616688"]  # K(3,2) = 1
    assert cli.main(["bound", "--log-normal", "1", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    ln = d["lognormal"]
    assert set(ln) == {"pos", "neg"} and ln["pos"]["s2"] == 1.0
    assert ln["pos"]["E_phi"] == pytest.approx(0.704483, abs=5e-7)  # 6 decimals: half a unit
    assert ln["neg"]["E_phi"] == pytest.approx(0.504502, abs=5e-7)
    assert ln["pos"]["smaller"] == ln["neg"]["smaller"] == "P4"
    assert list(ln["pos"]) == [
        "k", "lam", "s2", "E_phi", "E_phi2", "E_phiW", "log_E_phi", "log_E_phi2", "log_E_phiW",
        "M_E_phi", "M2", "K_E_phiW", "log_K_E_phiW", "smaller",
    ]  # fmt: skip


def test_bound_log_normal_single_kernel(capsys):
    assert cli.main(["bound", "--k", "0.5", "--lam", "1", "--log-normal", "1", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert list(d)[: len(KERNEL_KEYS)] == KERNEL_KEYS and d["lognormal"]["s2"] == 1.0
    # k < 1: no P4 bound (null), so M^2 is the smaller one
    assert d["lognormal"]["K_E_phiW"] is None and d["lognormal"]["smaller"] == "M2"
    assert cli.main(["bound", "--k", "1", "--lam", "2", "--log-normal", "1"]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith("B2: M^2")  # K = e^2 = 7.39: K E[phi W] = 4.17 > M^2 = 1.85
    # huge S2: the moments underflow float64 and are printed as exp(log)
    assert cli.main(["bound", "--k", "2", "--lam", "3", "--log-normal", "1e6"]) == 0
    assert "exp(-1250" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, msg",
    [
        (["--k", "abc", "--lam", "3"], "expected a number, got 'abc'"),
        (["--k", "2", "--lam", "-1"], "must be a finite number > 0"),
        (["--k", "nan", "--lam", "1"], "must be a finite number > 0"),
        (["--n", "x"], "expected an integer"),
        (["--log-normal", "0"], "argument --log-normal: must be a finite number > 0"),
        (["--log-normal", "-1"], "argument --log-normal: must be a finite number > 0"),
        (["--log-normal", "inf"], "argument --log-normal: must be a finite number > 0"),
        (["--log-normal", "x"], "argument --log-normal: expected a number, got 'x'"),
        (["--log-normal", "2e6"], "argument --log-normal: must be at most 1e+06"),
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
