"""The GPU kernel compiled to PTX for sm_80 and sm_90 without a GPU or driver.

The argument signatures are the ones the engine really passes to the CUDA back end:
every golden case is rendered through a back end that records the types of the kernel
arguments (built by ``cuda_backend.kernel_arguments``) instead of launching. Each
signature is compiled with both builds by the libNVVM that ``nbnumba[cuda]`` installs.
The parity build's final PTX (libdevice inlined, as it runs) must hold no fused
multiply-add, and its IR may call no libdevice function outside the list documented in
docs/architecture.md: sin, cos, exp and atan2 come from nbnumba.gpu_math.
"""
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from nbnumba import engine
from nbnumba.errors import NbnumbaError
from nbnumba.kernels import cpu_backend, cuda_backend
from nbnumba_cli.parse import config_from_args

from conftest import GOLDEN, stage_case

if os.environ.get("CI"):  # the CI installs nbnumba[cuda]: a missing numba-cuda is a failure
    from nbnumba.kernels import cuda as cuda_kernel
else:
    cuda_kernel = pytest.importorskip("nbnumba.kernels.cuda",
                                      reason="numba-cuda is not installed (nbnumba[cuda])")

TARGETS = [(8, 0), (9, 0)]

#: libdevice functions the kernel may call; each is explained in docs/architecture.md
LIBDEVICE_ALLOWED = {"__nv_sqrt", "__nv_floor"}

#: libdevice functions the parity build replaces by nbnumba.gpu_math's
LIBDEVICE_REPLACED = {"__nv_sin", "__nv_cos", "__nv_exp", "__nv_atan2"}

ARCHITECTURE = Path(__file__).parent.parent / "docs" / "architecture.md"


class RecordingBackend:
    """Stands in for the CUDA back end: records the kernel's argument types per build."""

    def __init__(self, signatures):
        self.signatures = signatures

    def render(self, region, row_start, row_stop, first_pixel, inputs, interpolate,
               threads=None, control=None):
        for build in cuda_kernel.BUILDS:
            _, args, *_ = cuda_backend.kernel_arguments(
                region, row_start, row_stop, first_pixel, inputs, interpolate, build,
                device_array=np.ascontiguousarray)
            self.signatures.add((build, cuda_kernel.argument_types(args)))
        return cpu_backend.row_results(max(row_stop - row_start, 0),
                                       max(region[5] - region[4], 0))


@pytest.fixture(scope="module")
def signatures(tmp_path_factory, monkeypatch_module):
    """{(build, argument types)} over every golden case the engine can render."""
    found = set()
    monkeypatch_module.setattr("nbnumba.kernels.get_backend",
                               lambda device: RecordingBackend(found))
    cases = json.loads((GOLDEN / "cases.json").read_text())
    old = os.getcwd()
    for case in cases:
        work = tmp_path_factory.mktemp(case["id"])
        stage_case(case, work)
        os.chdir(work)
        try:
            cfg, _ = config_from_args(case["args"])
            engine.render(engine.prepare(cfg), device="cuda")
        except NbnumbaError:
            pass  # a case of bad arguments or files renders nothing
        finally:
            os.chdir(old)
            shutil.rmtree(work, ignore_errors=True)
    assert {build for build, _ in found} == set(cuda_kernel.BUILDS)
    return found


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


_COMPILED = {}


def compiled(signatures, build, cc):
    """[(ptx, own_ptx, nvvm_ir)] of every signature of ``build`` for ``cc`` (see
    ``cuda.compile_ptx``); each build is compiled once, for all targets."""
    if build not in _COMPILED:
        _COMPILED[build] = [cuda_kernel.compile_ptx(types, TARGETS, build)
                            for b, types in sorted(signatures, key=str) if b == build]
    return [per_cc[cc] for per_cc in _COMPILED[build]]


def float_fma_count(ptx):
    """Fused multiply-adds in PTX (fma.rn.f64, fma.rn.f32, mad.*.f32/f64 and variants)."""
    return len(re.findall(r"\b(?:fma|mad)(?:\.\w+)*\.f(?:32|64)\b", ptx))


def libdevice_calls(nvvm_ir):
    """Names of the libdevice functions (``__nv_*``) the IR handed to libNVVM calls."""
    return set(re.findall(r'call [^@\n]*@"?(__nv_\w+)', nvvm_ir))


@pytest.mark.parametrize("cc", TARGETS, ids=lambda cc: f"sm_{cc[0]}{cc[1]}")
@pytest.mark.parametrize("build", ["parity", "fast"])
def test_kernel_compiles_to_ptx(signatures, build, cc):
    results = compiled(signatures, build, cc)
    assert results, "no signature recorded for this build"
    for ptx, _, _ in results:
        assert f".target sm_{cc[0]}{cc[1]}" in ptx
        assert ".entry" in ptx and "render_region" in ptx


@pytest.mark.parametrize("cc", TARGETS, ids=lambda cc: f"sm_{cc[0]}{cc[1]}")
def test_parity_build_has_no_fma_and_ieee_arithmetic(signatures, cc):
    for ptx, own_ptx, _ in compiled(signatures, "parity", cc):
        assert float_fma_count(ptx) == 0, "fused multiply-adds in the parity build's PTX"
        assert not re.search(r"\.(approx|ftz)\b", ptx)  # no fast division, no flush-to-zero
        assert "div.rn.f64" in ptx and "sqrt.rn.f64" in ptx
        assert float_fma_count(own_ptx) == 0
    # the option and the replaced functions are what remove them: the fast build of the
    # same code has them, in nbnumba's own code and in libdevice's sin, cos, exp, atan2
    for ptx, own_ptx, nvvm_ir in compiled(signatures, "fast", cc):
        assert float_fma_count(own_ptx) > 0
        assert float_fma_count(ptx) > float_fma_count(own_ptx)
        assert libdevice_calls(nvvm_ir) & LIBDEVICE_REPLACED


@pytest.mark.parametrize("cc", TARGETS, ids=lambda cc: f"sm_{cc[0]}{cc[1]}")
def test_parity_build_calls_only_documented_libdevice_functions(signatures, cc):
    documented = ARCHITECTURE.read_text()
    for _, own_ptx, nvvm_ir in compiled(signatures, "parity", cc):
        calls = libdevice_calls(nvvm_ir)
        assert "__nv_sqrt" in calls  # the scan sees the calls
        assert calls <= LIBDEVICE_ALLOWED, calls - LIBDEVICE_ALLOWED
        # the replacements are there and are called
        for name in LIBDEVICE_REPLACED:
            own = name.replace("__nv_", "nbnumba_")
            assert f'define double @"{own}"' in nvvm_ir
        assert re.search(r'call [^@\n]*@"?nbnumba_sin\b', nvvm_ir)
        # in the PTX of nbnumba's own code they are the only functions called by name
        called = set(re.findall(r"nbnumba_libdevice_([a-z0-9]+)\b", own_ptx))
        assert {"__nv_" + name for name in called} == calls
    for name in LIBDEVICE_ALLOWED | LIBDEVICE_REPLACED:
        assert f"`{name}`" in documented, f"{name} is not explained in docs/architecture.md"
