"""``vespo diagnose``: closed forms on synthetic logs, a log of the LM lab, formats, bad input."""

from __future__ import annotations

import csv
import json
import math
import sys

import numpy as np
import pytest
from scipy import integrate

from simulations.diagnose import DiagnoseLog, diagnose, fit_predict, load_log, read_table, recommend
from vespo_theory.cli import main
from vespo_theory.diagnostics import kish_ess_from_log_weights


def _write_csv(path, cols: dict) -> str:
    names = list(cols)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(names)
        for row in zip(*(cols[c] for c in names)):
            w.writerow([repr(float(v)) if isinstance(v, float) else v for v in row])
    return str(path)


def _write_jsonl(path, cols: dict) -> str:
    names = list(cols)
    with open(path, "w") as fh:
        for row in zip(*(cols[c] for c in names)):
            fh.write(json.dumps({c: (v.item() if hasattr(v, "item") else v)
                                 for c, v in zip(names, row)}) + "\n")  # fmt: skip
    return str(path)


def _json(capsys, argv) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def _lognormal_log(n, s2, seed):
    """log W ~ N(-s2/2, s2): E[W] = 1, E[W^m] = exp(s2 m (m - 1) / 2)."""
    rng = np.random.default_rng(seed)
    return {
        "log_w": rng.normal(-s2 / 2, math.sqrt(s2), n),
        "length": rng.integers(1, 200, n),
        "advantage": rng.choice([-1.0, 1.0], n),
        "step": np.repeat(np.arange(4), n // 4),
    }


def _kish_se(s2: float, n: int) -> float:
    """Delta-method standard error of Kish ESS/n = m1^2 / m2 (m_j = mean W^j) for log-normal W
    with E[W] = 1: gradient (2 m1/m2, -m1^2/m2^2) at (1, e^s2) against the covariance of
    (W, W^2), whose entries are the log-normal moments E[W^m] = exp(s2 m (m - 1) / 2)."""

    def e(m):  # the log-normal moment E[W^m]
        return math.exp(s2 * m * (m - 1) / 2)

    m2 = e(2)
    g = np.array([2.0 / m2, -1.0 / m2**2])
    cov = np.array([[e(2) - 1, e(3) - e(2)], [e(3) - e(2), e(4) - e(2) ** 2]])
    return math.sqrt(g @ cov @ g / n)


# --------------------------------------------------------------------------- closed forms


def test_lognormal_log_matches_closed_forms(tmp_path, capsys):
    n, s2 = 40_000, 0.5
    path = _write_csv(tmp_path / "syn.csv", _lognormal_log(n, s2, seed=0))
    rep = _json(capsys, ["diagnose", path, "--json", "--rule", "is", "--rule", "seq_tis"])
    # Kish ESS/n -> (E W)^2 / E[W^2] = exp(-s2); se from the delta method (~0.0076 here), and 4
    # standard errors leave a seeded test a 6e-5 chance of a false alarm under the normal limit
    se = _kish_se(s2, n)
    assert abs(rep["ess_frac"] - math.exp(-s2)) < 4 * se, (rep["ess_frac"], se)
    # chi^2 = E[W^2] - 1 = e^s2 - 1; sd of the sample mean of W^2 = sqrt((e^{6 s2} - e^{2 s2})/n)
    sd_chi2 = math.sqrt((math.exp(6 * s2) - math.exp(2 * s2)) / n)
    assert abs(rep["overall"]["chi2"] - math.expm1(s2)) < 4 * sd_chi2
    fit = rep["overall"]["fit"]
    # sample mean and sd of n normals: se sqrt(s2/n) and sqrt(s2/(2n)), 4 of them
    assert abs(fit["mu"] + s2 / 2) < 4 * math.sqrt(s2 / n)
    assert abs(fit["sigma"] - math.sqrt(s2)) < 4 * math.sqrt(s2 / (2 * n))
    assert abs(fit["ess_frac_lognormal"] - math.exp(-(fit["sigma"] ** 2))) < 1e-15
    # log-normal weights have every moment (true tail index 0); the finite-sample k-hat is
    # positive but well below the 0.7 threshold
    assert rep["khat"] < 0.5 and rep["overall"]["khat_ok"] is True
    assert [s["step"] for s in rep["steps"]] == [0, 1, 2, 3]
    for s in rep["steps"]:
        assert {"ess_frac", "khat", "khat_threshold", "n"} <= set(s)
        # each step has n/4 draws: 4 standard errors of that size
        assert abs(s["ess_frac"] - math.exp(-s2)) < 4 * _kish_se(s2, s["n"])
    assert sum(b["n"] for b in rep["length_bins"]) == n


def test_pareto_log_khat_matches_the_tail_index(tmp_path, capsys):
    xi, n = 0.8, 200_000
    rng = np.random.default_rng(1)
    # Pareto I with alpha = 1/xi: exceedances over any threshold are generalized Pareto with
    # shape xi exactly, so the PSIS fit is unbiased up to its weak prior ((M k + 5)/(M + 10):
    # 0.003 here). Its sd is the GPD MLE's (1 + xi)/sqrt(M), M = 3 sqrt(n) = 1342 tail draws:
    # 0.049; 4 sd = 0.2.
    log_w = np.log1p(rng.pareto(1.0 / xi, n))
    cols = {"log_w": log_w, "length": np.full(n, 10), "advantage": np.ones(n)}
    path = _write_csv(tmp_path / "pareto.csv", cols)
    rep = _json(capsys, ["diagnose", path, "--json", "--rule", "seq_tis"])
    M = math.ceil(min(0.2 * n, 3 * math.sqrt(n)))
    assert abs(rep["khat"] - xi) < 4 * (1 + xi) / math.sqrt(M), rep["khat"]
    assert rep["khat_threshold"] == 0.7
    assert rep["overall"]["khat_ok"] is False  # seeded: k-hat = 0.8 +- 0.05 > 0.7


def test_fit_predict_quadrature_against_closed_forms_and_quad():
    mu, s = -0.3, 0.8
    lw = np.random.default_rng(2).normal(mu, s, 1000)
    mu, s = lw.mean(), lw.std(ddof=1)  # the fit's own (mu, sigma)
    out = fit_predict(lw, np.full(lw.size, 5), 1.0, ["is", "vespo"])
    p = out["rules"]["is"]
    # E[W] = exp(mu + s^2/2), E[W^2] = exp(2 mu + 2 s^2); 101 Gauss-Hermite nodes integrate
    # exp(2 s x) with a truncation error ~ (2s)^202 / 202! (< 1e-200): only rounding remains
    assert p["c_mean_pos"] == pytest.approx(math.exp(mu + s * s / 2), rel=1e-12)
    assert p["c2_mean_pos"] == pytest.approx(math.exp(2 * mu + 2 * s * s), rel=1e-12)
    assert p["bias2_pos"] < 1e-25  # c == W: the bias proxy is 0 up to log-space rounding

    def dens(x):
        return math.exp(-0.5 * ((x - mu) / s) ** 2) / (s * math.sqrt(2 * math.pi))

    def phi(x, k, lam):
        return math.exp(k * x + lam * (1 - math.exp(x)))

    for sign, (k, lam) in (("pos", (2, 3)), ("neg", (3, 2))):
        lo, hi = mu - 12 * s, mu + 12 * s  # the normal's mass outside is < 1e-32
        m1 = integrate.quad(
            lambda x, k=k, lam=lam: phi(x, k, lam) * dens(x), lo, hi, epsabs=0, epsrel=1e-12
        )[0]
        b2 = integrate.quad(
            lambda x, k=k, lam=lam: (phi(x, k, lam) - math.exp(x)) ** 2 * dens(x),
            lo, hi, epsabs=0, epsrel=1e-12,
        )[0]  # fmt: skip
        # smooth integrands: quadrature and Gauss-Hermite agree far below 1e-8 (quad's own
        # relative error is asked at 1e-12)
        assert out["rules"]["vespo"][f"c_mean_{sign}"] == pytest.approx(m1, rel=1e-8)
        assert out["rules"]["vespo"][f"bias2_{sign}"] == pytest.approx(b2, rel=1e-8)


def test_recommended_tis_cap_meets_both_targets_and_says_when_none_can():
    rng = np.random.default_rng(3)
    n = 4000
    # sigma = 1.2: raw ESS/n ~ exp(-1.44) = 0.24; a cap near 5 moves < 10% of the mass and
    # lifts ESS/n above 0.4 (seeded)
    lw = rng.normal(-0.72, 1.2, n)
    log = DiagnoseLog(lw, np.full(n, 50), rng.choice([-1.0, 1.0], n))
    rec = recommend(log, ess_target=0.4, bias_target=0.1)
    assert rec["ess_frac"] < 0.4
    assert any("need a correction" in line for line in rec["reasoning"])
    C = rec["tis_cap"]
    assert C is not None and rec["tis_cap_range"][0] == C
    # the claim re-checked directly on the weights
    assert kish_ess_from_log_weights(np.minimum(lw, math.log(C))) / n >= 0.4
    w = np.exp(lw)
    assert np.maximum(w - C, 0).sum() / w.sum() <= 0.1 + 1e-12  # log-space sum rounding
    assert rec["vespo_pos"] is not None and rec["vespo_neg"] is not None
    # sigma = 2: no cap meets ESS/n >= 0.5 with at most 10% moved; both ends are reported
    lw = rng.normal(-2.0, 2.0, n)
    rec = recommend(DiagnoseLog(lw, np.full(n, 50), np.ones(n)), 0.5, 0.1)
    assert rec["tis_cap"] is None and rec["tis_cap_ess"] < rec["tis_cap_bias"]
    assert any("no seq_tis cap meets both targets" in line for line in rec["reasoning"])


# --------------------------------------------------------------------------- the LM lab


def test_lm_lab_log_agrees_with_the_lab_measurement(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    import copy

    from simulations.lm.measure import measure_log_w, write_sequence_log
    from simulations.lm.model import GPT, GPTConfig
    from simulations.lm.tasks import get_task
    from simulations.lm.tokenizer import CharTokenizer

    tok = CharTokenizer()
    torch.manual_seed(0)
    early = GPT(GPTConfig(tok.vocab_size, 32, 2, 2, 80))
    later = copy.deepcopy(early)
    with torch.no_grad():
        g = torch.Generator().manual_seed(1)
        for p in later.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    prompts = get_task("reverse").sample(np.random.default_rng(0), 12)
    rows, lw, lengths = measure_log_w(
        early, later, tok, prompts, samples_per_prompt=3, max_new_tokens=40,
        generator=torch.Generator().manual_seed(0), device="cpu", chunk=16,
    )  # fmt: skip
    adv = np.random.default_rng(4).choice([-1.0, 1.0], lw.size)
    step = np.arange(lw.size) // 18
    path = write_sequence_log(tmp_path / "lm.csv", lw, lengths, adv, step)
    rep = _json(capsys, ["diagnose", str(path), "--json"])
    lab = rows[-1]  # the lab's own "all" row (simulations.lm.measure.summarise_log_w)
    assert rep["n"] == lab["n"] == 36
    # the same estimators on the same float64 values (written with repr: read back exactly)
    assert rep["ess_frac"] == pytest.approx(lab["ess_frac"], rel=1e-12)
    assert rep["khat"] == pytest.approx(lab["khat"], rel=1e-12)
    assert rep["overall"]["log_w_std"] == pytest.approx(lab["log_w_std"], rel=1e-12)
    assert len(rep["steps"]) == 2 and rep["steps"][0]["n"] == 18
    assert rep["steps"][0]["khat"] is None  # 18 < 20: no tail fit, reported as null
    assert sum(b["n"] for b in rep["length_bins"]) == 36


# --------------------------------------------------------------------------- formats


def test_token_log_is_summed_per_sequence_and_token_rules_are_exact(tmp_path):
    from vespo_theory.rules import get_rule

    rng = np.random.default_rng(5)
    B, T = 30, 6
    lr = rng.normal(0, 0.3, (B, T))
    lens = rng.integers(1, T + 1, B)
    adv = rng.normal(size=B)
    rows = {"seq_id": [], "log_ratio": [], "advantage": [], "step": []}
    for b in range(B):
        for t in range(lens[b]):
            rows["seq_id"].append(f"s{b}")
            rows["log_ratio"].append(float(lr[b, t]))
            rows["advantage"].append(float(adv[b]))
            rows["step"].append(b // 10)
    log = load_log(_write_csv(tmp_path / "tok.csv", rows))
    mask = np.arange(T)[None, :] < lens[:, None]
    assert log.kind == "token" and log.n == B
    assert np.array_equal(log.length, lens)
    np.testing.assert_allclose(log.log_w, np.where(mask, lr, 0).sum(1), rtol=0, atol=1e-15)
    rep = diagnose(log, rules=["ppo_clip", "token_tis"])
    c = get_rule("ppo_clip").coefficient(lr, mask, adv)
    want = (c.sum(1) / lens).mean()
    got = rep["overall"]["rules"]["ppo_clip"]
    assert got["exact"] is True
    pos = adv >= 0
    assert got["c_mean_pos"] == pytest.approx((c.sum(1) / lens)[pos].mean(), rel=1e-14)
    assert want > 0
    # the logp_new / logp_old spelling gives the same log
    rows2 = dict(rows)
    new = rng.normal(-1, 0.5, len(rows["log_ratio"]))
    rows2["token_logp_new"] = list(new)
    rows2["token_logp_old"] = list(new - np.asarray(rows["log_ratio"]))
    del rows2["log_ratio"]
    log2 = load_log(_write_jsonl(tmp_path / "tok.jsonl", rows2))
    # new - (new - lr) rounds once per token (<= 1 ulp of |new| ~ 4e-16), summed over <= 6
    np.testing.assert_allclose(log2.log_w, log.log_w, rtol=0, atol=1e-14)


def test_jsonl_reads_like_csv(tmp_path):
    cols = _lognormal_log(100, 0.3, seed=6)
    a = load_log(_write_csv(tmp_path / "a.csv", cols))
    b = load_log(_write_jsonl(tmp_path / "a.jsonl", cols))
    assert np.array_equal(a.log_w, b.log_w) and np.array_equal(a.step, b.step)
    assert np.array_equal(a.length, b.length) and np.array_equal(a.advantage, b.advantage)


def test_parquet_without_pyarrow_or_pandas_says_what_to_install(tmp_path, monkeypatch):
    p = tmp_path / "log.parquet"
    p.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ValueError, match="pip install pyarrow"):
        read_table(p)


def test_parquet_round_trip(tmp_path):
    pa = pytest.importorskip("pyarrow", reason="pyarrow not installed: Parquet is optional")
    import pyarrow.parquet as pq

    cols = _lognormal_log(100, 0.3, seed=7)
    pq.write_table(pa.table(cols), tmp_path / "a.parquet")
    a = load_log(tmp_path / "a.parquet")
    assert np.array_equal(a.log_w, cols["log_w"])


def test_out_writes_report_plot_and_sidecar(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = _write_csv(tmp_path / "syn.csv", _lognormal_log(400, 0.5, seed=8))
    assert main(["diagnose", path, "--out", str(tmp_path / "out"), "--rule", "vespo"]) == 0
    text = capsys.readouterr().out
    assert "ESS/n" in text and "recommendation" in text
    out = tmp_path / "out"
    rep = json.loads((out / "diagnose.json").read_text())
    assert rep["rules"] == ["vespo"]
    assert (out / "diagnose.png").read_bytes()[:4] == b"\x89PNG"
    side = json.loads((out / "diagnose.sidecar.json").read_text())
    assert side["config"]["file"] == path and "wall_time_s" in side


# --------------------------------------------------------------------------- bad input


def _bad(tmp_path, capsys, name, text, *extra):
    p = tmp_path / name
    p.write_text(text)
    assert main(["diagnose", str(p), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize(
    "name, text, needle",
    [
        ("a.csv", "length,advantage\n3,1\n", "missing column 'log_w'"),
        ("a.csv", "log_w,advantage\n0.1,1\n", "missing column 'length'"),
        ("a.csv", "log_w,length\n0.1,3\n", "missing column 'advantage'"),
        ("a.csv", "log_w,length,advantage\nnan,3,1\n", "column 'log_w': row 1 is NaN"),
        ("a.csv", "log_w,length,advantage\n0.1,3,1\n0.2,x,1\n", "column 'length': row 2 is not"),
        ("a.csv", "log_w,length,advantage\n0.1,2.5,1\n", "column 'length': row 1 is 2.5"),
        ("a.csv", "log_w,length,advantage\n0.1,0,1\n", "expected an integer >= 1"),
        ("a.csv", "log_w,length,advantage\n0.1,3,\n", "column 'advantage': row 1 is missing"),
        ("a.csv", "log_w,length,advantage\ninf,3,1\n", "column 'log_w': row 1 is inf"),
        ("a.csv", "log_w,length,advantage,step\n0.1,3,1,1.5\n", "column 'step': row 1"),
        ("a.csv", "", "is empty"),
        ("a.csv", "log_w,length,advantage\n", "no data rows"),
        (
            "a.jsonl",
            '{"log_w": "0.1", "length": 3, "advantage": 1}\n',
            "column 'log_w': row 1 is a str",
        ),
        (
            "a.jsonl",
            '{"log_w": 0.1, "length": true, "advantage": 1}\n',
            "column 'length': row 1 is a boolean",
        ),
        (
            "a.jsonl",
            '{"log_w": NaN, "length": 3, "advantage": 1}\n',
            "column 'log_w': row 1 is NaN",
        ),
        (
            "a.jsonl",
            '{"log_w": 0.1, "length": 3, "advantage": 1}\n{"log_w": 0.1}\n',
            "column 'length': row 2 is missing",
        ),
        ("a.jsonl", "not json\n", "line 1 is not valid JSON"),
        ("a.jsonl", "", "no data rows"),
        ("a.txt", "log_w\n", "unknown extension '.txt'"),
        (
            "a.csv",
            "seq_id,log_ratio,advantage\na,0.1,1\na,0.2,2\n",
            "changes the advantage within seq_id",
        ),
        ("a.csv", "seq_id,advantage\na,1\n", "missing column 'log_ratio'"),
        ("a.csv", "seq_id,token_logp_new,advantage\na,0.1,1\n", "missing column 'token_logp_old'"),
        ("a.csv", "seq_id,log_ratio,advantage,mask\na,0.1,1,2\n", "column 'mask': row 1 is 2"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_naming_the_column(tmp_path, capsys, name, text, needle):
    err = _bad(tmp_path, capsys, name, text)
    assert err.startswith("vespo diagnose: error:") and needle in err, err


def test_missing_file_and_bad_targets(tmp_path, capsys):
    assert main(["diagnose", str(tmp_path / "none.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err
    p = _write_csv(tmp_path / "a.csv", _lognormal_log(40, 0.3, seed=9))
    with pytest.raises(SystemExit) as exc:
        main(["diagnose", p, "--ess-target", "1.5"])
    assert exc.value.code == 2 and "--ess-target" in capsys.readouterr().err
    assert main(["diagnose", p, "--rule", "nope"]) == 2
    assert "unknown rule 'nope'" in capsys.readouterr().err


def test_the_documented_lognormal_example_is_what_the_command_prints(tmp_path, capsys):
    """docs/integrations.md quotes `vespo diagnose` on a synthetic log it describes
    (default_rng(0): log_w ~ N(-0.25, 0.5), length uniform on 1..299, advantage +-1, 4 steps of
    5000): rebuild that file and hold every quoted line to today's output."""
    from pathlib import Path

    from vespo_theory.cli import main as vespo_main

    rng = np.random.default_rng(0)
    n = 20000
    lw = rng.normal(-0.25, np.sqrt(0.5), n)
    length = rng.integers(1, 300, n)
    adv = rng.choice([-1.0, 1.0], n)
    path = tmp_path / "outputs" / "diagnose" / "lognormal.csv"
    path.parent.mkdir(parents=True)
    with open(path, "w") as fh:
        fh.write("log_w,length,advantage,step\n")
        for i in range(n):
            fh.write(f"{float(lw[i])!r},{int(length[i])},{float(adv[i])!r},{i // 5000}\n")
    doc = (Path(__file__).resolve().parent.parent / "docs" / "integrations.md").read_text()
    cmd = "vespo diagnose outputs/diagnose/lognormal.csv"
    block = doc.split(f"```text\n$ {cmd}", 1)[1].split("```", 1)[0]
    argv = block.splitlines()[0].split()
    import os

    old = os.getcwd()
    os.chdir(tmp_path)  # the quoted command names the file relative to the working directory
    try:
        assert vespo_main(["diagnose", "outputs/diagnose/lognormal.csv", *argv]) == 0
    finally:
        os.chdir(old)
    out = capsys.readouterr().out
    quoted = [
        ln.rstrip()
        for ln in block.splitlines()[1:]
        if ln.strip() and ln.strip() != "..." and not ln.startswith("per rule, whole file (")
    ]
    assert len(quoted) == 17  # the premise: the block was found (17 quoted lines of the run)
    missing = [ln for ln in quoted if ln not in out]
    assert missing == []
