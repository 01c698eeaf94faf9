"""scripts/mutation_setup.py: the worktree edits for a mutmut run of a verdict-carrying module
(docs/mutation.md). Applied to copies of the real files in a temporary folder."""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest
from helpers import load_file

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11 (the project supports 3.10)

ROOT = Path(__file__).resolve().parents[1]


MS = load_file("scripts/mutation_setup.py", "mutation_setup")


def _copy_tree(tmp_path: Path, module: str) -> Path:
    spec = MS.MODULES[module]
    tests = {str(p.relative_to(ROOT)) for t in spec["tests"] for p in ROOT.glob(t)}
    rels = {spec["source"], "pyproject.toml", "tests/test_falsify.py", *tests}
    for rel in rels:
        if (ROOT / rel).exists():
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / rel, tmp_path / rel)
    return tmp_path


@pytest.mark.parametrize("module", ["checks", "paper", "extended"])
def test_register_decorators_move_below_the_module_in_order(tmp_path, module):
    root = _copy_tree(tmp_path, module)
    src_rel = MS.MODULES[module]["source"]
    before = re.findall(r'^@register\("([^"]+)"\)\ndef (\w+)', (ROOT / src_rel).read_text(), re.M)
    assert before  # the premise: the module registers its checks with the decorator
    MS.prepare(module, root)
    after = (root / src_rel).read_text()
    ast.parse(after)
    assert not re.search(r"^@register\(", after, re.M)
    assert re.findall(r'^register\("([^"]+)"\)\((\w+)\)$', after, re.M) == before
    # the verdict test runs one check per test, not the module-scoped fixture
    tests = (root / MS.MODULES[module]["tests"][0]).read_text()
    ast.parse(tests)
    assert "(r,) = run_checks([cid])" in tests
    conf = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["mutmut"]
    assert conf["only_mutate"] == [src_rel] and conf["max_children"] == 1
    selection = conf["pytest_add_cli_args_test_selection"]
    assert all((root / t).exists() for t in selection)
    assert MS.MODULES[module]["tests"][0] in selection  # the verdict tests are selected
    if module == "extended":
        assert "lru_cache" not in after.split("def _derived_table")[0].rsplit("\n", 3)[-2]
        assert "test_extended_checks_are_fast" not in tests


def test_falsify_claims_split_per_claim(tmp_path):
    root = _copy_tree(tmp_path, "falsify_claims")
    MS.prepare("falsify_claims", root)
    fal = (root / "tests/test_falsify.py").read_text()
    ast.parse(fal)
    assert "all_results)" not in fal and "def test_same_seed_same_search" in fal
    per = (root / "tests/test_falsify_per_claim_mut.py").read_text()
    ast.parse(per)
    assert "search(get_claim(cid), CI_BUDGET, seed=0)" in per
    conf = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["mutmut"]
    assert conf["source_paths"] == ["simulations"] and "vespo_theory" in conf["also_copy"]


def test_remove_test_drops_only_that_function():
    src = "import x\n\n\n@mark\ndef test_a(\n    y,\n):\n    pass\n\n\ndef test_b():\n    pass\n"
    out = MS.remove_test(src, "test_a")
    assert out == "import x\n\n\ndef test_b():\n    pass\n"
    with pytest.raises(SystemExit, match="test_c not found"):
        MS.remove_test(src, "test_c")


def test_a_prepared_worktree_is_refused_a_second_time(tmp_path):
    root = _copy_tree(tmp_path, "paper")
    MS.prepare("paper", root)
    with pytest.raises(SystemExit, match="no @register decorators"):
        MS.prepare("paper", root)
