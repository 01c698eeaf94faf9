"""Shared test configuration: hypothesis profiles, the CUDA skip rule and the device fixtures.

Hypothesis profiles (select with HYPOTHESIS_PROFILE; CI=true selects ``ci`` by default):

* ``dev``: quick local runs (50 examples).
* ``ci``: sized for the CI machine (2 cores, the whole suite well under 20 minutes).
* ``nightly``: long searches (2000 examples).

Every profile has ``deadline=None`` (shared 2-core machines make per-example timing meaningless)
and prints failing examples as ``@reproduce_failure`` blobs so that they can be replayed.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

_common = dict(deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=50, **_common)
settings.register_profile("ci", max_examples=100, derandomize=True, **_common)
settings.register_profile("nightly", max_examples=2000, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def skip_without_cuda() -> None:
    """The one CUDA rule of the suite: skip without a GPU, fail with VESPO_REQUIRE_CUDA=1."""
    if not _cuda_available():
        if os.environ.get("VESPO_REQUIRE_CUDA") == "1":
            pytest.fail("VESPO_REQUIRE_CUDA=1 but no CUDA device is available")
        pytest.skip("no CUDA device")


@pytest.fixture(
    params=[
        pytest.param("cpu", id="torch-cpu"),
        pytest.param("cuda", id="torch-cuda", marks=pytest.mark.cuda),
    ]
)
def device(request):
    """A torch device name, "cpu" and "cuda" (the CUDA case follows :func:`skip_without_cuda`)."""
    pytest.importorskip("torch")
    if request.param == "cuda":
        skip_without_cuda()
    return request.param


@pytest.fixture
def require_cuda() -> None:
    """Request this fixture in a CUDA-only test instead of repeating the skip rule."""
    skip_without_cuda()


def _backends() -> list:
    out = [pytest.param("numpy", id="numpy"), pytest.param("torch-cpu", id="torch-cpu")]
    out.append(pytest.param("torch-cuda", id="torch-cuda", marks=pytest.mark.cuda))
    return out


@pytest.fixture(params=_backends())
def backend(request):
    """Run one test body under numpy, torch on CPU and (when present) torch on CUDA.

    Returns a function ``to(array, dtype=None)`` that converts a NumPy array to the backend's
    array type. CUDA cases skip without a GPU and fail when VESPO_REQUIRE_CUDA=1.
    """
    import numpy as np

    name = request.param
    if name.startswith("torch"):
        torch = pytest.importorskip("torch")
        device = "cuda" if name == "torch-cuda" else "cpu"
        if device == "cuda":
            skip_without_cuda()

        def to(a, dtype=None):
            t = torch.as_tensor(np.asarray(a), device=device)
            return t.to(dtype) if dtype is not None else t

        to.name, to.device = name, device
        return to

    def to_np(a, dtype=None):
        a = np.asarray(a)
        return a.astype(dtype) if dtype is not None else a

    to_np.name, to_np.device = name, "cpu"
    return to_np


# --- LM caches: never the real user cache ----------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def _vespo_cache_dir(tmp_path_factory):
    """Point ``VESPO_CACHE_DIR`` (vespo_theory.cache) at a per-session temporary folder, so no
    test reads a stale warm start from, or writes into, ~/.cache/vespo-theory. Shared by the
    session: tests reuse each other's warm starts, as runs do."""
    path = tmp_path_factory.mktemp("vespo_cache")
    old = os.environ.get("VESPO_CACHE_DIR")
    os.environ["VESPO_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("VESPO_CACHE_DIR", None)
    else:
        os.environ["VESPO_CACHE_DIR"] = old


@pytest.fixture(autouse=True)
def _restore_the_memory_limit_env():
    """``vespo --memory-limit SIZE`` writes $VESPO_MEMORY_LIMIT (so that worker processes see
    it); a test that runs the dispatcher with a tiny limit must not leave it to later tests."""
    name = "VESPO_MEMORY_LIMIT"
    old = os.environ.get(name)
    yield
    if old is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = old
