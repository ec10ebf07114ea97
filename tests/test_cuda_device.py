"""``-device cuda`` / ``cuda-fast`` where it cannot run: one-line errors, exit status 9.

Each case runs ``nbnumba`` in a subprocess, so that the absence of numba-cuda (an
import blocker installed before anything is imported) or of a GPU (no visible device)
is simulated whatever this machine has.
"""
import subprocess
import sys

import pytest

ARGS = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "5",
        "-detpixels", "16", "-nonoise", "-floatfile", "out.bin"]

#: makes every import of numba-cuda fail, as on a machine without it
WITHOUT_NUMBA_CUDA = """
import sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name == "numba.cuda" or name.startswith(("numba.cuda.", "numba_cuda")):
            raise ImportError(f"No module named {name!r}")
sys.meta_path.insert(0, Blocker())
"""

RUN = "from nbnumba_cli.main import main; raise SystemExit(main(sys.argv[1:]))"


def run(prelude, args, cwd, env=None):
    code = "import sys\n" + prelude + "\n" + RUN
    return subprocess.run([sys.executable, "-c", code] + args, cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def error_lines(stderr):
    return [line for line in stderr.splitlines() if line.strip()]


@pytest.mark.parametrize("device", ["cuda", "cuda-fast"])
def test_without_numba_cuda_names_the_extra(tmp_path, device):
    proc = run(WITHOUT_NUMBA_CUDA, ARGS + ["-device", device], tmp_path)
    assert proc.returncode == 9
    lines = error_lines(proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"nbnumba: error: -device {device} needs the numba-cuda package")
    assert "pip install 'nbnumba[cuda]'" in lines[0]
    assert not (tmp_path / "out.bin").exists()


def test_without_a_gpu_says_no_gpu_was_found(tmp_path):
    pytest.importorskip("numba.cuda")
    import os
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", NUMBA_ENABLE_CUDASIM="0")
    proc = run("", ARGS + ["-device", "cuda"], tmp_path, env=env)
    assert proc.returncode == 9
    lines = error_lines(proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("nbnumba: error: -device cuda: no CUDA GPU was found")
    assert not (tmp_path / "out.bin").exists()


def test_unknown_device_is_refused(cli):
    run_ = cli(ARGS + ["-device", "gpu"])
    assert run_.code == 9
    assert run_.err.strip() == "nbnumba: error: argument -device: invalid device value: 'gpu'"
