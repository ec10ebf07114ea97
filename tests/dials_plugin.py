"""nbnumba's dxtbx format class for the tests that run DIALS: installed the way the user
guide says (``pip install --no-deps`` with DIALS' Python), but with ``--target`` into a
directory of its own, to be put on PYTHONPATH, so that DIALS' environment stays as it is.
"""
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: what pip needs to build the package (copied: a build in the checkout would leave files)
SOURCES = ("pyproject.toml", "README.md", "nbnumba", "cli", "dxtbx_plugin", "docs")


def install(python, workdir):
    """Install nbnumba with ``python``'s pip under ``workdir`` (a new directory); returns
    the directory to put on PYTHONPATH."""
    source, target = Path(workdir) / "source", Path(workdir) / "plugin"
    source.mkdir(parents=True)
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, source / name)
    run = subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--target",
                          str(target), str(source)], capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return str(target)
