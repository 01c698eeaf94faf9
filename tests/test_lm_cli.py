"""``vespo train-lm``: task list, bad input as one-line errors, a smoke run and measurement."""

from __future__ import annotations

import csv
import json

import pytest

pytest.importorskip("torch")

from vespo_theory.cli import main

# Smoke options: the easy task, a tiny model (the warm start is cached in $VESPO_CACHE_DIR,
# a temporary folder: tests/conftest.py).
SMOKE = ["--task", "reverse-short", "--steps", "2", "--no-progress", "--device", "cpu"]
SMOKE += ["--sft-steps", "70", "--d-model", "32"]


def test_list_tasks(capsys):
    assert main(["train-lm", "--list-tasks"]) == 0
    out = capsys.readouterr().out
    for name in ("add", "reverse", "sort"):
        assert name in out


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--rule", "nope"], "unknown rule 'nope'; valid rules: is,"),
        (["--task", "nope"], "unknown task 'nope'; valid tasks: add"),
        (["--staleness", "0"], "staleness"),
        (["--async-lag", "-2"], "async_lag"),
        (["--mismatch", "int3"], "--mismatch"),
        (["--model", "/no/such/model"], "--model: path '/no/such/model' does not exist"),
        ([], None),  # --out missing
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, match, capsys, tmp_path):
    args = ["train-lm", *argv] + (["--out", str(tmp_path)] if argv else [])
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vespo train-lm: error:") and "\n" not in err
    assert (match or "--out is required") in err


def test_cuda_without_gpu_is_a_clear_error(capsys, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert main(["train-lm", "--device", "cuda", "--out", str(tmp_path)]) == 2
    assert "no CUDA device" in capsys.readouterr().err


def test_fast_run_then_resume_is_a_no_op(tmp_path, monkeypatch, capsys):
    # The warm start is cached in the user cache folder ($VESPO_CACHE_DIR here), not in
    # ./outputs of the working folder (it was before the cache moved; the test changed with it).
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VESPO_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "run"
    assert main(["train-lm", "--fast", *SMOKE, "--out", str(out)]) == 0
    cap = capsys.readouterr()
    assert "held-out success" in cap.out
    # stderr is not a terminal under pytest: no progress bar (and none on stdout)
    assert cap.err == "" and "it/s" not in cap.out
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [r["step"] for r in rows] == ["1", "2"]
    assert json.loads((out / "metrics.json").read_text())["config"]["task"] == "reverse-short"
    assert any((tmp_path / "cache" / "lm_sft").glob("*.pt"))
    assert not (tmp_path / "outputs").exists()
    before = (out / "metrics.csv").read_bytes()
    assert main(["train-lm", "--fast", *SMOKE, "--out", str(out)]) == 0  # resumes: done
    assert (out / "metrics.csv").read_bytes() == before


def test_measure_mode_builtin(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "m"
    argv = ["train-lm", "--measure", "--fast", *SMOKE, "--out", str(out)]
    argv += ["--measure-prompts", "8", "--samples-per-prompt", "4"]
    assert main(argv) == 0
    rows = list(csv.DictReader(open(out / "measure.csv")))
    assert rows[-1]["bin"] == "all" and int(rows[-1]["n"]) == 32
    assert sum(int(r["n"]) for r in rows[:-1]) == 32
    # E[phi^2] <= M^2 holds sample by sample (claim B2); 1e-12 relative slack: float64 phi is
    # within rounding of M only near W = k/lam (8 u (k |L| + lam (1 + W)) ~ 1e-14), and the CSV
    # stores repr(float), exact
    for r in rows:
        assert float(r["phi2_pos_mean"]) <= float(r["m2_pos"]) * (1 + 1e-12)
        assert float(r["phi2_neg_mean"]) <= float(r["m2_neg"]) * (1 + 1e-12)
    # two RL steps moved the weights: responses have non-zero log W
    assert float(rows[-1]["log_w_std"]) > 0
    from simulations.lm.rl import RL_RECIPE

    code = json.loads((out / "measure.json").read_text())["code"]
    assert code["rl_recipe"] == RL_RECIPE


def test_cache_dir_flag_beats_the_environment(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VESPO_CACHE_DIR", str(tmp_path / "env"))
    out = tmp_path / "run"
    argv = ["train-lm", "--fast", *SMOKE, "--out", str(out), "--cache-dir", str(tmp_path / "c")]
    assert main(argv) == 0
    assert any((tmp_path / "c" / "lm_sft").glob("*.pt"))
    assert not (tmp_path / "env").exists()


def test_unusable_out_is_one_line_and_exit_2(tmp_path, capsys):
    afile = tmp_path / "a_file"
    afile.write_text("x")
    for argv, match in (
        (["--out", str(afile)], "--out: "),
        (["--out", str(afile / "sub")], "--out: "),
        (["--out", str(tmp_path / "ok"), "--cache-dir", str(afile)], "--cache-dir: "),
    ):
        assert main(["train-lm", "--fast", *SMOKE, *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("vespo train-lm: error:") and "\n" not in err, err
        assert match in err and "Traceback" not in err


def test_progress_bar_only_on_a_terminal(monkeypatch):
    from types import SimpleNamespace

    from simulations.cli.train_lm import _progress

    class Err:
        def __init__(self, tty):
            self.tty = tty

        def isatty(self):
            return self.tty

    monkeypatch.setattr("sys.stderr", Err(True))
    assert _progress(SimpleNamespace(no_progress=False)) is True
    assert _progress(SimpleNamespace(no_progress=True)) is False
    monkeypatch.setattr("sys.stderr", Err(False))
    assert _progress(SimpleNamespace(no_progress=False)) is False
