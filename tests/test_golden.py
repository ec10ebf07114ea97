"""Every golden case, run in-process through the ``nbnumba`` CLI and compared like
shared/tools/golden_check.py (rules in golden_compare.py)."""
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli, stage_case
from golden_compare import (case_errors, file_errors, float_bit_identical, float_errors, gunzip,
                            smv_split, stat_lines)

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


# ------------------------------------------------- the comparison rules themselves
def _f32(values):
    return np.asarray(values, dtype="<f4").tobytes()


def test_float_rule_relative_and_absolute_floor():
    ref = [1000.0, 1.0, 0.0]
    assert float_errors(_f32(ref), _f32(ref)) == []
    assert float_errors(_f32([1000.0005, 1.0, 0.0]), _f32(ref)) == []      # 5e-7 relative
    assert float_errors(_f32([1000.01, 1.0, 0.0]), _f32(ref))              # 1e-5 relative
    # a zero pixel is compared absolutely against 1e-6 * (1e-6 * max) = 1e-9
    assert float_errors(_f32([1000.0, 1.0, 5e-10]), _f32(ref)) == []
    assert float_errors(_f32([1000.0, 1.0, 2e-9]), _f32(ref))
    assert float_errors(_f32([1000.0, 1.0]), _f32(ref))                    # size
    assert float_errors(_f32([np.nan, 1.0, 0.0]), _f32(ref))               # NaN


def test_smv_rule_header_and_data():
    header = b"{\nHEADER_BYTES=512;\nSIZE1=2;\n}\f"
    ref = header + b" " * (512 - len(header)) + np.array([1, 2], "<u2").tobytes()
    assert smv_split(ref) == (header[:-1], np.array([1, 2], "<u2").tobytes())
    other_header = ref.replace(b"SIZE1=2", b"SIZE1=3")
    other_data = ref[:-2] + np.array([3], "<u2").tobytes()
    assert file_errors("int.img", ref, ref) == []
    assert file_errors("int.img", other_header, ref) == ["int.img header differs"]
    assert file_errors("noise.img", other_header, ref) == []
    assert file_errors("noise.img", other_data, ref) == ["noise.img 1 pixels differ"]
    assert file_errors("image.pgm", b"P5 x", b"P5 y") == ["image.pgm bytes differ"]


def test_stat_lines():
    text = "x\n max_I = 3  at 1 2\nmean= 1 rms= 2 rmsd= 3\nintfile_scale = 1\n"
    assert stat_lines(text) == ["max_I = 3  at 1 2", "mean= 1 rms= 2 rmsd= 3"]


def test_comparison_catches_a_changed_run(golden_dir, golden_cases, tmp_path):
    """A run with one changed argument must fail the comparison of its case."""
    case = dict(next(c for c in golden_cases if c["id"] == "noise_seed_a"))
    case["args"] = case["args"] + ["-distance", "101"]
    stage_case(case, tmp_path)
    res = run_cli(case["args"], tmp_path)
    fails = case_errors(golden_dir, case, res.code, res.out + res.err, tmp_path)
    assert any(f.startswith("float.bin rel err") for f in fails)
    assert any(f.startswith("stats lines differ") for f in fails)
