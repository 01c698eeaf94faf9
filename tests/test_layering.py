"""The layering rules of DESIGN.md, checked in a fresh interpreter with the heavy packages blocked.

Setting ``sys.modules[name] = None`` makes ``import name`` raise ImportError, which is what a
machine without torch / matplotlib would do.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

_BLOCK = "import sys\nfor m in {mods!r}:\n    sys.modules[m] = None\n"


def _run(code: str, block: tuple[str, ...]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _BLOCK.format(mods=block) + code],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_vespo_theory_works_without_torch_and_matplotlib():
    code = (
        "import numpy as np\n"
        "import vespo_theory, vespo_theory.rules, vespo_theory.losses, vespo_theory.diagnostics\n"
        "from vespo_theory.kernels import phi\n"
        "from vespo_theory.cli import main\n"
        # 4 e^-3 = 0.199148273...: quoted to 8 decimals, so half a unit of the last is 5e-9
        "assert abs(float(phi(np.log(2.0), 2, 3)) - 0.19914827) < 5e-9\n"
        "c = vespo_theory.rules.get_rule('vespo').coefficient(\n"
        "    np.zeros((1, 3)), np.ones((1, 3), bool), np.ones(1))\n"
        # log W = 0 gives log phi = k * 0 + lam * (1 - e^0) = 0 exactly, so c == 1 exactly
        "assert (c == 1.0).all()\n"
        "raise SystemExit(main(['derive', '--only', 'K3,M1']))\n"
    )
    proc = _run(code, ("torch", "matplotlib"))
    assert proc.returncode == 0, proc.stderr
    assert "verified" in proc.stdout


def test_simulations_never_imports_matplotlib():
    code = (
        "import pkgutil, importlib, simulations\n"
        "for m in pkgutil.walk_packages(simulations.__path__, 'simulations.'):\n"
        "    importlib.import_module(m.name)\n"
    )
    pytest.importorskip("torch")  # simulations.lm needs torch; matplotlib must never be needed
    proc = _run(code, ("matplotlib",))
    assert proc.returncode == 0, proc.stderr


def test_vespo_help_works_without_torch_and_matplotlib():
    proc = _run("from vespo_theory.cli import main\nmain(['--help'])\n", ("torch", "matplotlib"))
    assert proc.returncode == 0, proc.stderr
    assert "train-lm" in proc.stdout and "derive" in proc.stdout
