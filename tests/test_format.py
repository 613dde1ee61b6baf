"""The packed format's numbers are written twice on purpose (cnncore/_format.py for Python and the
reference, enums in src/_core.pyx for the core): they must agree, and match docs/format.md."""
import inspect
import re
from pathlib import Path

import cnncore as cc
from cnncore import _core, reference
from cnncore import _format as F

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_compiled_numbers_equal_python_numbers():
    c = _core.format_constants()
    assert c["N_FIELDS"] == F.N_FIELDS and c["N_OPS"] == F.N_OPS
    assert c["ops"] == F.OPS
    assert c["errors"] == F.ERROR_CODES
    assert c["columns"] == {k: getattr(F, k) for k in c["columns"]}
    assert c["flags"] == {k: getattr(F, k) for k in c["flags"]}
    assert c["DIM_MAX"] == 2**31 - 1
    from cnncore.conventions import TERMS
    assert c["N_TERMS"] == len(TERMS) and c["terms"] == {t.upper(): i for i, t in enumerate(TERMS)}
    assert len(F.FIELD_NAMES) == F.N_FIELDS


def test_docs_list_every_op_and_error_code():
    text = (DOCS / "format.md").read_text()
    for code, (name, _) in F.ERRORS.items():
        assert re.search(rf"\| {code} \| {name} \|", text), name
    table = text[text.index("## Op codes"):text.index("## Validation")]
    codes = set()
    for line in table.splitlines():
        m = re.match(r"\| ([0-9, –]+) \|", line)
        if m:
            for part in m.group(1).split(","):
                lo, _, hi = part.strip().partition("–")
                codes.update(range(int(lo), int(hi or lo) + 1))
    assert codes == set(range(F.N_OPS))


def test_reference_has_the_api_signatures():
    """cytoolz's lesson: the twin has the same entry points and arguments as the public API."""
    for name in ("count", "summary"):
        api = inspect.signature(getattr(cc, name)).parameters
        ref = inspect.signature(getattr(reference, name)).parameters
        shared = [p for p in api if p not in ("backend", "n_threads")]
        assert [p for p in ref if p in shared] == shared, name
