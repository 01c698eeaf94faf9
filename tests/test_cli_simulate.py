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
    "khat_thresh",
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
    # k-hat's threshold min(1 - 1/log10 S, 0.7) for the S draws it was fitted to: the exact
    # records resample 10000 draws (1 - 1/4 = 0.75, capped: 0.7); Monte Carlo uses n = 2000,
    # 1 - 1/log10(2000) = 0.69709 (vespo_theory.diagnostics.khat_threshold); None with no k-hat
    from vespo_theory.diagnostics import khat_threshold

    for r in out:
        want = (
            None if r["khat"] is None else khat_threshold(2000 if r["method"] == "mc" else 10_000)
        )
        assert r["khat_thresh"] == want
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
    # context-free, fixed length: the exact multinomial sum (501 count vectors) is chosen
    assert out[0]["method"] == "multinomial" and out[0]["cosine"] is None and out[0]["exact"]
    # with the count-vector limit below 501, --exact takes the lattice (two token log-ratios
    # always lie on a lattice: exact)
    argv = ["simulate", "ar", "--mu", "0.5,0.5", "--pi", "0.4,0.6", "--T", "500"]
    argv += ["--adv-constant", "1", "--exact", "--rule", "vespo", "--max-count-vectors", "100"]
    out = _json(capsys, [*argv, "--json"])
    assert out[0]["method"] == "lattice" and out[0]["exact"] and out[0]["cosine"] is None
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
    assert out[0]["method"] == "monte-carlo" and set(out[0]["se"]) >= {"E_phi", "var_trace"}


def test_ar_table(capsys):
    argv = ["simulate", "ar", "--V", "3", "--T", "3", "--rule", "vespo"]
    assert main([*argv, "--policy", "markov"]) == 0
    text = capsys.readouterr().out
    assert "method: enumeration (exact)" in text and "E[W] = 1" in text
    assert main(argv) == 0  # context-free: the multinomial sum over C(5, 2) = 10 count vectors
    text = capsys.readouterr().out
    assert "method: multinomial (exact) (10 count vectors)" in text and "E[W] = 1" in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["simulate", "ar", "--staleness", "-1"], "staleness must be an integer >= 0"),
        (["simulate", "ar", "--mu", "0.5,0.4", "--pi", "0.5,0.5"], "mu must sum to 1"),
        (["simulate", "ar", "--mu", "0,1", "--pi", "0.5,0.5"], "mu = 0 where pi > 0"),
        (
            ["simulate", "ar", "--V", "8", "--T", "12", "--policy", "markov", "--exact"],
            "no exact method applies",
        ),
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


# --------------------------------------------------------------------------- flags from fields


def test_flags_and_defaults_come_from_the_config_fields():
    """Every ARConfig / RunOptions field is a flag of the same name with the field's default,
    so a sweep key and a flag are one word and each default is stated once."""
    from dataclasses import fields

    from simulations.config import ARConfig, RunOptions, flag
    from vespo_theory.cli import build_parser

    ar = build_parser().parse_args(["simulate", "ar"])
    for cls in (ARConfig, RunOptions):
        for f in fields(cls):
            assert getattr(ar, f.name) == f.default, f.name
    help_text = build_parser()._subparsers._group_actions[0].choices["simulate"]
    text = help_text._subparsers._group_actions[0].choices["ar"].format_help()
    text = " ".join(text.split())  # argparse wraps the help lines
    for f in fields(ARConfig):
        assert flag(f.name) in text
    assert "(default 100000)" in text and "(default 2049)" in text


def _ar_json(capsys, argv):
    assert main(["simulate", "ar", *argv, "--json"]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(
    "old, new",
    [
        (
            [
                "--mu",
                "0.5,0.5",
                "--pi",
                "0.4,0.6",
                "--T",
                "40",
                "--adv-constant",
                "1",
                "--exact",
                "--rule",
                "vespo",
                "--grid",
                "65",
            ],
            [
                "--mu-probs",
                "0.5,0.5",
                "--pi-probs",
                "0.4,0.6",
                "--T",
                "40",
                "--adv-mode",
                "constant",
                "--adv-value",
                "1",
                "--method",
                "exact",
                "--rules",
                "vespo",
                "--grid-points",
                "65",
            ],
        ),
        (
            ["--V", "3", "--T", "3", "--mc", "500", "--rule", "is", "--rule", "vespo"],
            ["--V", "3", "--T", "3", "--method", "mc", "--n-mc", "500", "--rules", "is,vespo"],
        ),
    ],
    ids=["exact-lattice", "mc"],
)
def test_old_flag_spellings_give_the_same_numbers(capsys, old, new):
    assert _ar_json(capsys, old) == _ar_json(capsys, new)


def test_shortcut_and_method_together_is_an_error(capsys):
    assert main(["simulate", "ar", "--exact", "--method", "mc"]) == 2
    err = capsys.readouterr().err
    assert "--exact is a shortcut for --method" in err and err.count("\n") == 1


def test_rule_names_are_resolved_once_at_the_entry(capsys, monkeypatch):
    """The CLI turns names into Rule objects once; nothing below looks a name up again."""
    import simulations.config as config

    calls = []
    real = config.get_rule

    def counting(name):
        calls.append(name)
        return real(name)

    monkeypatch.setattr(config, "get_rule", counting)
    for argv in (
        ["--V", "3", "--T", "3", "--policy", "markov"],  # enumeration
        ["--V", "3", "--T", "4", "--method", "mc", "--n-mc", "200"],  # closed-form true grad
        ["--V", "3", "--T", "4", "--policy", "markov", "--method", "mc", "--n-mc", "200"],
        ["--mu", "0.5,0.5", "--pi", "0.4,0.6", "--T", "30", "--adv-constant", "1"],  # lattice
    ):
        calls.clear()
        _ar_json(capsys, [*argv, "--rules", "vespo,is"])
        # 2 names; the on-policy true gradient (markov, mc) resolves "reinforce" once more
        assert calls in (["vespo", "is"], ["vespo", "is", "reinforce"]), (argv, calls)
    calls.clear()
    assert main(["simulate", "bandit", "--rules", "vespo", "--n-mc", "100", "--json"]) == 0
    assert calls == ["vespo"]


def test_batch_level_rules_are_left_out_and_refused_by_name():
    """BAPO and VCPO compute their coefficient from the whole batch: the simulators' default rule
    list leaves them out, and naming one is one clear error (no population number exists)."""
    from simulations.config import resolve_rules
    from vespo_theory.rules import available, get_rule

    batch = {n for n in available() if get_rule(n).batch_level}
    assert batch >= {"bapo", "vcpo"}  # the premise: the registry marks them
    names = {r.name for r in resolve_rules(None)}
    assert not names & batch and names | batch == set(available())
    with pytest.raises(ValueError, match=r"^rules: bapo is a batch-level rule \(the coeff"):
        resolve_rules(["vespo", "bapo"])
    with pytest.raises(ValueError, match=r"^rules: bapo, vcpo are batch-level rules"):
        resolve_rules("bapo,vcpo")


def test_the_documented_exact_example_is_what_the_command_prints(capsys):
    """docs/simulations.md quotes `vespo simulate ar --mu 0.5,0.3,0.2 --pi 0.42,0.33,0.25
    --T 150 --exact --rule vespo --rule is` verbatim (its table as Markdown): the command must
    print those lines and those table cells today."""
    from pathlib import Path

    from vespo_theory.cli import main

    doc = (Path(__file__).resolve().parent.parent / "docs" / "simulations.md").read_text()
    block = doc.split("The last one (no advantage given", 1)[1].split("(the table rows", 1)[0]
    argv = "simulate ar --mu 0.5,0.3,0.2 --pi 0.42,0.33,0.25 --T 150 --exact --rule vespo --rule is"
    assert main(argv.split()) == 0
    out = capsys.readouterr().out
    verbatim = [ln.strip() for ln in block.splitlines() if ln.startswith("    ")]
    assert len(verbatim) == 5  # the method line and the four lines under the table
    for line in verbatim:
        assert line in out, line
    rows = [ln for ln in block.splitlines() if ln.startswith("| vespo") or ln.startswith("| is ")]
    printed = {
        ln.split()[0]: ln.split()
        for ln in out.splitlines()
        if ln.split()[:1] in (["vespo"], ["is"])
    }
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells == printed[cells[0]], cells
