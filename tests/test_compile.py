"""Compiling: the one-line notice before numba compiles, ``nbnumba --compile``, a cache
that cannot be written, and environment values numba cannot start with."""
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numba
import pytest

from conftest import mounted_tmpfs
from nbnumba import compilecache
from nbnumba_cli import guard

TESTS = Path(__file__).parent
TINY = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "2",
        "-detpixels", "4", "-seed", "1", "-noprogress"]


def _python(code, *args, env=None, cwd=None, timeout=1800):
    """Run ``python -c code args`` with ``env`` added to the environment."""
    full = dict(os.environ)
    full.pop("NBNUMBA_DEBUG", None)
    full.update(env or {})
    return subprocess.run([sys.executable, "-c", code, *args], env=full, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


_NBNUMBA = "from nbnumba_cli.entry import nbnumba; nbnumba()"


# ------------------------------------------------------------------ the compile notice
def _fresh_function(name):
    """A new numba function that claims to be nbnumba's (so it is announced)."""
    def f(x):
        return x + 1
    f.__module__ = "nbnumba.test_only"
    f.__qualname__ = f.__name__ = name
    return numba.njit(f)


def test_compile_notice_is_one_line_once_and_only_when_numba_compiles():
    first, second = _fresh_function("first"), _fresh_function("second")
    log = io.StringIO()
    with compilecache.announce_compiles("nbnumba", stream=log) as watch:
        assert first(1) == 2
        assert second(1) == 2
        assert first(2) == 3           # compiled already: nothing new
    lines = log.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("nbnumba: compiling nbnumba.test_only.first ")
    assert "for this CPU" in lines[0]
    assert "once per machine and nbnumba version" in lines[0]
    assert [name for name, _ in watch.compiled] == ["nbnumba.test_only.first",
                                                    "nbnumba.test_only.second"]
    log = io.StringIO()
    with compilecache.announce_compiles("nbnumba", stream=log):
        assert first(3) == 4 and second(3) == 4
    assert log.getvalue() == ""
    other = numba.njit(lambda x: x * 2)   # not nbnumba's: never announced
    with compilecache.announce_compiles("nbnumba", stream=log):
        assert other(2) == 4
    assert log.getvalue() == ""


def test_cached_here_reads_numbas_index_for_this_machine():
    from nbnumba import images
    values = __import__("numpy").ones(4, dtype="float32")
    images.statistics(values, 2, 2, (0, 1, 0, 1))       # compiled or loaded: now cached
    assert compilecache.cached_here(images._statistics)
    assert not compilecache.cached_here(_fresh_function("never_cached"))


def test_a_cold_run_says_what_it_compiles_before_compiling(tmp_path):
    """With an empty cache the line comes first, long before the kernel is compiled
    (the process is stopped once the line is there)."""
    full = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", _NBNUMBA, *TINY], cwd=tmp_path, env=full,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        waited = time.perf_counter() - start
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    assert line.startswith("nbnumba: compiling nbnumba."), line
    assert "rendering kernel" in line and "about a minute" in line
    assert "once per machine and nbnumba version" in line and "--compile" in line
    assert waited < 30, waited    # ~1 s on an idle machine; generous for a loaded one


# ------------------------------------------------------------------ nbnumba --compile
_GOLDEN_RUNNER = """
import json, pathlib, sys
sys.path.insert(0, sys.argv[1])
from conftest import run_cli, stage_case, GOLDEN
from golden_compare import case_errors
from nbnumba.compilecache import CompileWatch
cases = json.loads((GOLDEN / "cases.json").read_text())
report = {"failed": [], "notices": []}
with CompileWatch() as watch:
    for case in cases:
        work = pathlib.Path(sys.argv[2]) / case["id"]
        stage_case(case, work)
        res = run_cli(case["args"], work)
        if case_errors(GOLDEN, case, res.code, res.out + res.err, work):
            report["failed"].append(case["id"])
        if "compiling" in res.err:
            report["notices"].append(case["id"])
report["compiled"] = [name for name, _ in watch.compiled]
report["cases"] = len(cases)
print(json.dumps(report))
"""


def _snapshot(folder):
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in Path(folder).rglob("*") if p.is_file()}


def test_ahead_of_time_compile_leaves_nothing_to_compile_for_any_golden_case(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    env = {"NUMBA_CACHE_DIR": str(cache)}
    done = _python(_NBNUMBA, "--compile", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = done.stdout.splitlines()
    assert len(summary) == 1 and summary[0].startswith("nbnumba: compiled "), done.stdout
    assert done.stderr.startswith("nbnumba: compiling every kernel variant")
    assert done.stderr.count("\n") == 1, done.stderr
    before = _snapshot(cache)
    assert any(name.endswith(".nbc") for name in before)

    again = _python(_NBNUMBA, "--compile", env=env, cwd=tmp_path)
    assert again.returncode == 0 and again.stderr == ""
    assert "already compiled" in again.stdout

    runs = tmp_path / "runs"
    runs.mkdir()
    golden = _python(_GOLDEN_RUNNER, str(TESTS), str(runs), env=env, cwd=tmp_path)
    assert golden.returncode == 0, golden.stderr
    report = json.loads(golden.stdout.splitlines()[-1])
    assert report["cases"] == 55 and report["failed"] == []
    assert report["compiled"] == [], "compiled after --compile: %s" % report["compiled"]
    assert report["notices"] == []
    assert _snapshot(cache) == before, "new cache entries were written"


# ------------------------------------------------------------------ no writable cache
def _unwritable_cache(tmp_path):
    """The environment of an installation where numba can write no cache.

    Tests run as root, who may write anywhere, so a read-only installation is
    simulated: numba looks only at NUMBA_CACHE_DIR (NUMBA_CACHE_LOCATOR_CLASSES), which
    lies below a regular file, so it can neither be created nor written. numba then
    finds no cache location, exactly as for a read-only installation without a
    writable user cache directory (the same "no locator available" refusal).
    """
    blocker = tmp_path / "not_a_directory"
    blocker.write_text("a file where the cache directory would be\n")
    return {"NUMBA_CACHE_DIR": str(blocker / "cache"),
            "NUMBA_CACHE_LOCATOR_CLASSES": "UserProvidedCacheLocator"}


def test_without_a_writable_cache_it_renders_uncached_with_a_one_line_note(tmp_path):
    env = _unwritable_cache(tmp_path)
    res = _python(_NBNUMBA, *TINY, "-floatfile", "f.bin", env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert "for this run only" in lines[0] and "NUMBA_CACHE_DIR" in lines[0]
    assert "cannot be made: Not a directory" in lines[0]
    assert (tmp_path / "f.bin").stat().st_size == 4 * 4 * 4
    assert not (tmp_path / "not_a_directory").is_dir()


def test_compile_command_refuses_without_a_writable_cache(tmp_path):
    res = _python(_NBNUMBA, "--compile", env=_unwritable_cache(tmp_path), cwd=tmp_path)
    assert res.returncode == 9
    assert res.stdout == ""
    assert res.stderr.count("\n") == 1
    assert res.stderr.startswith("nbnumba: error: cannot compile ahead of time: "
                                 "NUMBA_CACHE_DIR=")


_NOISIFY = "from nbnumba_cli.entry import nb_noisify; nb_noisify()"


def _noisify_input(directory):
    import numpy as np
    np.full((8, 8), 100.0, dtype="<f4").tofile(directory / "in.bin")
    return ["-floatfile", "in.bin", "-seed", "1", "-nopgm"]


def test_a_missing_cache_directory_is_not_made_and_the_run_goes_on(tmp_path):
    """NUMBA_CACHE_DIR below a directory that does not exist: nothing is created (neither
    it nor numba's fall-back places), the run compiles for itself and says so once."""
    missing = tmp_path / "absent" / "cache"
    res = _python(_NOISIFY, *_noisify_input(tmp_path), env={
        "NUMBA_CACHE_DIR": str(missing)}, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and "for this run only" in lines[0], res.stderr
    assert "NUMBA_CACHE_DIR=%s does not exist" % missing in lines[0]
    assert not (tmp_path / "absent").exists()
    assert (tmp_path / "noiseimage.img").exists()


def test_the_cache_directory_named_is_made_when_its_parent_exists(tmp_path):
    assert compilecache.cache_directory_problem(str(tmp_path / "cache")) is None
    assert (tmp_path / "cache").is_dir()
    (tmp_path / "file").write_text("x")
    assert "is not a directory" in compilecache.cache_directory_problem(str(tmp_path / "file"))
    assert "does not exist" in compilecache.cache_directory_problem(str(tmp_path / "a" / "b"))
    assert compilecache.cache_directory_problem("") is None     # not set: numba's places


@pytest.fixture
def full_disk(tmp_path):
    """A full 64 kB file system (tmpfs) at tmp_path/disk; skips where mounting is not
    allowed."""
    with mounted_tmpfs(tmp_path / "disk", "64k") as disk:
        fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:   # full
            pass
        finally:
            os.close(fd)
        yield disk


def test_a_cache_on_a_full_disk_warns_once_and_the_run_goes_on(full_disk, tmp_path):
    res = _python(_NOISIFY, *_noisify_input(tmp_path), env={
        "NUMBA_CACHE_DIR": str(full_disk)}, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    warned = [line for line in res.stderr.splitlines() if "warning" in line]
    assert warned == ["nb-noisify: warning: compiled code is not cached: the cache's file "
                      "system is full; every run compiles what it needs (set "
                      "NUMBA_CACHE_DIR to a writable directory)"], res.stderr
    assert "Traceback" not in res.stderr and "internal error" not in res.stderr
    assert (tmp_path / "noiseimage.img").exists()


# ------------------------------------------------------------------ NUMBA_NUM_THREADS
@pytest.mark.parametrize("value", ["0", "-3", "100000", "two", "1.5", ""])
def test_bad_thread_counts_are_one_line_errors(value):
    assert guard.environment_problem({"NUMBA_NUM_THREADS": value}).startswith(
        "NUMBA_NUM_THREADS=%s is not a thread count from 1 to " % value)


@pytest.mark.parametrize("value", ["1", "2", " 4 ", str(guard.thread_limit())])
def test_good_thread_counts_pass(value):
    assert guard.environment_problem({"NUMBA_NUM_THREADS": value}) is None
    assert guard.environment_problem({}) is None


@pytest.mark.parametrize("command", [_NBNUMBA, "from nbnumba_cli.entry import "
                                     "nbnumba_series; nbnumba_series()"])
@pytest.mark.parametrize("value", ["100000", "0"])
def test_commands_refuse_bad_thread_counts_before_starting_numba(tmp_path, command, value):
    res = _python(command, *TINY, env={"NUMBA_NUM_THREADS": value}, cwd=tmp_path)
    assert res.returncode == 9
    assert res.stderr.count("\n") == 1
    assert res.stderr.startswith("nbnumba") and ": error: NUMBA_NUM_THREADS=" in res.stderr
    assert list(tmp_path.iterdir()) == []


def test_in_process_runs_check_the_thread_count_too(cli, monkeypatch):
    monkeypatch.setenv("NUMBA_NUM_THREADS", "0")
    res = cli(TINY)
    assert res.code == 9
    assert res.err.startswith("nbnumba: error: NUMBA_NUM_THREADS=0 is not a thread count")


def test_the_compile_cache_module_imports_no_kernel_back_end():
    """compilecache sits below the kernels: it learns about them from a registered
    callback, never by importing them."""
    import ast
    source = Path(compilecache.__file__).read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            imported.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    nbnumba_modules = [name for name in imported
                       if name.startswith(".") or name.startswith("nbnumba")]
    assert nbnumba_modules == [], nbnumba_modules   # the bottom layer: none of nbnumba
