"""Bad input, one class per row: one line on stderr naming the argument, exit status 2.

The classes a new user hit (a review ran every command with 216 bad inputs): a memory
refusal, a non-finite reward, an unusable output folder (for every command that writes one),
empty or unknown rules, malformed probabilities, unknown claim IDs, out-of-range integers. Each
runs in-process through the ``vespo`` dispatcher, so the test sees exactly what a user sees:
argparse errors print the usage line and then one ``error:`` line; errors raised by a command
print only the ``error:`` line. No row may print a traceback.
"""

from __future__ import annotations

import json

import pytest

from vespo_theory.cli import main


@pytest.fixture
def files(tmp_path):
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "empty_rules.json").write_text(
        json.dumps({"kind": "ar", "base": {"V": 2, "T": 2}, "rules": []})
    )
    (tmp_path / "ok.json").write_text(
        json.dumps({"kind": "ar", "base": {"V": 2, "T": 2}, "rules": ["vespo"]})
    )
    return tmp_path


CASES = [
    # (argv with {d} for the temporary folder, what the line must say)
    ("simulate ar --V 32000 --T 4096 --policy markov", "over the memory limit"),
    ("simulate bandit --mu 0.5,0.5 --pi 0.5,0.5 --reward inf,0", "--reward"),
    ("simulate bandit --mu 0.5,0.5 --pi 0.5,0.5 --reward nan,0", "--reward"),
    ("simulate ar --mu 0.5,0.6 --pi 0.5,0.5 --T 3", "mu must sum to 1"),
    ("simulate ar --V 4 --T 6 --staleness -1", "staleness"),
    ("simulate ar --V 4 --T 6 --rules nope", "unknown rule 'nope'"),
    ("simulate ar --V 100 --T 100 --method exact", "1e+200"),
    ("sweep {d}/empty_rules.json --out {d}/o1", "rules is empty"),
    ("sweep {d}/ok.json --out {d}/a_file", "--out"),
    ("sweep {d}/missing.json --out {d}/o2", "cannot read sweep config"),
    ("figures kernels --fast --out {d}/a_file", "--out"),
    ("falsify --claim B2 --budget 2 --report {d}/a_file", "--report"),
    ("falsify --claim ZZ", "unknown claim 'ZZ'"),
    ("derive --only ZZ", "unknown claim ID"),
    ("train-lm --fast --out {d}/a_file", "--out"),
    ("train-lm --fast --out {d}/run --cache-dir {d}/a_file", "--cache-dir"),
    ("train-lm --rule nope --fast --out {d}/run2", "unknown rule 'nope'"),
    ("bound --k 1 --lam 0", "--lam"),
    ("--memory-limit lots bound", "--memory-limit"),
]


@pytest.mark.parametrize("argv, says", CASES, ids=[c[0][:48] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(argv, says, files, capsys, monkeypatch):
    # the memory row must not depend on this machine's memory: a fixed 8 GiB limit (the
    # estimate is 122 GiB)
    monkeypatch.setenv("VESPO_MEMORY_LIMIT", "8G")
    try:
        rc = main(argv.format(d=files).split())
    except SystemExit as exc:  # argparse
        rc = exc.code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert rc == 2, err
    assert "Traceback" not in err
    error_lines = [ln for ln in lines if "error:" in ln]
    assert len(error_lines) == 1 and says in error_lines[0], err
    # besides that line, at most argparse's usage line
    assert len(lines) == 1 or (len(lines) == 2 and lines[0].startswith("usage:")), err


def test_the_check_passes_good_input(files, capsys):
    # the premise-fails case of the table above: valid input exits 0 with nothing on stderr
    assert main(["bound", "--k", "1", "--lam", "2"]) == 0
    assert main(["simulate", "ar", "--V", "2", "--T", "2", "--rules", "vespo", "--json"]) == 0
    assert capsys.readouterr().err == ""
