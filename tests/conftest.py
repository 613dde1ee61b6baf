"""Shared fixtures: every counting test runs against the compiled core and the pure-Python reference."""
import pytest

BACKENDS = ("core", "reference")


@pytest.fixture(params=BACKENDS)
def backend(request):
    """The cnncore implementation under test: "core" (Cython) or "reference" (pure Python)."""
    return request.param
