"""Every golden case, run in-process through the ``nbnumba`` CLI and compared like
shared/tools/golden_check.py (rules in golden_compare.py)."""
import json
from pathlib import Path

import pytest

from conftest import run_cli, stage_case
from golden_compare import case_errors, float_bit_identical, gunzip

CASES = json.loads((Path(__file__).parent / "data" / "golden" / "cases.json").read_text())
CASE_IDS = [c["id"] for c in CASES]

#: non-deviation cases whose float image is within the 1e-6 rule but not bit-identical
#: to the C's (none known; a case listed here is still held to the parity rule)
NOT_BIT_IDENTICAL = set()


@pytest.fixture(scope="session")
def golden_run(tmp_path_factory, golden_cases):
    """run(case_id) -> (case, CliRun, workdir): each case rendered once per session."""
    by_id = {c["id"]: c for c in golden_cases}
    done = {}

    def run(case_id):
        if case_id not in done:
            case = by_id[case_id]
            work = tmp_path_factory.mktemp("golden_" + case_id)
            stage_case(case, work)
            done[case_id] = (case, run_cli(case["args"], work), work)
        return done[case_id]
    return run


def test_case_list_is_complete(golden_cases):
    assert len(golden_cases) == 55
    assert len(set(CASE_IDS)) == len(CASE_IDS)


@pytest.mark.parametrize("case_id", CASE_IDS, ids=CASE_IDS)
def test_golden_case(case_id, golden_run, golden_dir):
    case, res, work = golden_run(case_id)
    fails = case_errors(golden_dir, case, res.code, res.out + res.err, work)
    assert not fails, f"{case_id}: " + "; ".join(fails)


def _bit_identity_cases():
    return [c["id"] for c in CASES
            if not c.get("deviation") and c["exit_code"] == 0 and "float.bin" in c["outputs"]]


def test_float_images_bit_identical(golden_run, golden_dir):
    """Bit-for-bit float32 parity (stronger than the 1e-6 rule) on the normal cases."""
    differing = []
    for case_id in _bit_identity_cases():
        case, res, work = golden_run(case_id)
        assert res.code == 0, f"{case_id}: exit {res.code}: {res.err.strip()}"
        got = (work / "float.bin").read_bytes()
        ref = gunzip(golden_dir / "cases" / case_id / "float.bin.gz")
        if not float_bit_identical(got, ref):
            differing.append(case_id)
    assert set(differing) == NOT_BIT_IDENTICAL, (
        f"float images not bit-identical: {sorted(differing)}")
