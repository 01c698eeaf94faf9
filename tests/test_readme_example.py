"""README.md's worked example is what its commands print today (scripts/regen_readme.py)."""

from __future__ import annotations

from helpers import load_file


def _gen():
    return load_file("scripts/regen_readme.py")


def test_readme_example_is_current():
    assert _gen().main(["--check"]) == 0, "run: python scripts/regen_readme.py"


def test_check_catches_a_stale_number_but_not_a_timing(tmp_path, monkeypatch):
    gen = _gen()
    fresh = gen.splice(gen.README.read_text(), gen.run_examples())
    readme = tmp_path / "README.md"
    monkeypatch.setattr(gen, "README", readme)
    # a different timing in the seconds column is not staleness ...
    readme.write_text(fresh.replace("symbolic          0.", "symbolic          9."))
    assert gen.main(["--check"]) == 0
    # ... a changed number is
    readme.write_text(fresh.replace("1.54155", "1.54156", 1))
    assert gen.main(["--check"]) == 1
