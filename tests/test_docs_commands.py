"""Every ``vespo`` command line that README.md and docs/*.md show parses with today's CLI.

Examples in code blocks (fenced, or indented by four spaces) are read line by line: a line that
starts with ``vespo `` or ``$ vespo `` is split like a shell would (shlex), its ``# comment`` and
optional ``[...]`` groups are dropped, and the rest must parse with the real argument parser (no
command runs). Config files it names (``configs/*.json``) must exist. This catches a renamed flag,
a removed subcommand, or a config file the docs name that is gone.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from vespo_theory.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _code_lines(text: str):
    fenced = False
    for raw in text.splitlines():
        if raw.strip().startswith("```"):
            fenced = not fenced
            continue
        if fenced or raw.startswith("    "):
            yield raw.strip()


def _examples():
    for doc in DOCS:
        for line in _code_lines(doc.read_text()):
            line = line.removeprefix("$ ").strip()
            if not line.startswith("vespo "):
                continue
            # output that starts with the word (``vespo N=1 ...: held-out ...``) is not a command:
            # a command's next word is a flag or a lower-case subcommand name
            if not re.fullmatch(r"-.*|[a-z][a-z-]*", line.split()[1]):
                continue
            yield pytest.param(line, id=f"{doc.name}:{line[:60]}")


def _argv(line: str) -> list[str]:
    line = re.sub(r"\s#.*$", "", line)  # a trailing comment
    while re.search(r"\[[^\[\]]*\]", line):  # optional groups, innermost first
        line = re.sub(r"\s*\[[^\[\]]*\]", "", line)
    return shlex.split(line)[1:]


EXAMPLES = list(_examples())


def test_the_docs_show_examples():
    # README's quickstart and worked example, and every command's doc: fewer means the reader broke
    assert len(EXAMPLES) >= 15


@pytest.mark.parametrize("line", EXAMPLES)
def test_documented_command_parses(line):
    argv = _argv(line)
    try:
        build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on an unknown flag or a bad value
        pytest.fail(f"`{line}` does not parse with today's CLI (exit {exc.code})")
    for arg in argv:
        if arg.startswith("configs/"):
            assert (ROOT / arg).is_file(), f"`{line}` names {arg}, which does not exist"


def test_a_wrong_flag_in_a_doc_line_is_caught():
    # the premise-fails check: a renamed flag must make parsing fail
    with pytest.raises(SystemExit):
        build_parser().parse_args(_argv("vespo bound --kk 2 --lam 3  # comment"))
    assert _argv("vespo simulate ar --V 4 [--exact | --mc 20000] [--json]  # x") == [
        "simulate", "ar", "--V", "4"
    ]


def test_readme_counts_the_registered_rules():
    """README.md states how many reshaping rules the registry holds; it must be today's count."""
    import re
    from pathlib import Path

    from vespo_theory.rules import available

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    counts = re.findall(r"the (\d+) reshaping rules", readme)
    assert counts and all(int(c) == len(available()) for c in counts), counts
