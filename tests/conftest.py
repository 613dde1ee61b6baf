"""Shared fixtures: every counting test runs against the compiled core and the pure-Python reference."""
import pytest

BACKENDS = ("core", "reference")


@pytest.fixture(params=BACKENDS)
def backend(request):
    """The cnncore implementation under test: "core" (Cython) or "reference" (pure Python)."""
    return request.param


# ---- hypothesis profiles (tests/test_core_vs_reference.py): "ci" when $CI is set, else "dev" ----
import os  # noqa: E402

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "ci", derandomize=True, max_examples=300, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile(
    "dev", max_examples=100, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("ci" if os.environ.get("CI") else "dev")
