"""The resident renderer (``nbnumba --server``; cli/client.py, renderer.py, renderchild.py).

Real processes throughout: the installed console scripts as clients, a renderer started
with ``nbnumba --server start`` in a private runtime directory of the test (never the
user's own), stopped (and, failing that, killed) when the test or module is done.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import (GOLDEN, HEAVY, PROMPT, RENDERER_ROOTS, STOP_CELL, renderer_pids,
                      run_cli, stage_case, stop_while_rendering)

BIN = Path(sys.executable).parent
NBNUMBA = BIN / "nbnumba"
pytestmark = pytest.mark.skipif(not NBNUMBA.exists(),
                                reason="the nbnumba console script is not installed")

CELL = STOP_CELL
TINY = CELL + ["-detpixels", "32", "-seed", "1", "-noprogress"]
CASES = {c["id"]: c for c in json.loads((GOLDEN / "cases.json").read_text())}


def _gone(pid):
    try:
        state = Path("/proc/%d/stat" % pid).read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state == "Z"


def _wait_until(condition, timeout=60.0, what="condition"):
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)


def _children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path("/proc/%s/stat" % entry).read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry))
    return found


class Renderer:
    """A renderer of this installation in a runtime directory of its own."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="nbr", dir="/tmp")
        os.chmod(self.root, 0o700)
        RENDERER_ROOTS.append(self.root)
        self.env = dict(os.environ, XDG_RUNTIME_DIR=self.root, NBNUMBA_SERVER="on")
        self.env.pop("NBNUMBA_DEBUG", None)
        self.pid = None

    @property
    def folder(self):
        return Path(self.root) / "nbnumba"

    def run(self, args, cwd, env=None, prog="nbnumba", **kwargs):
        return subprocess.run([str(BIN / prog)] + list(args), cwd=cwd,
                              env=dict(self.env, **(env or {})), capture_output=True,
                              timeout=kwargs.pop("timeout", 600), **kwargs)

    def popen(self, args, cwd, env=None, **kwargs):
        return subprocess.Popen([str(NBNUMBA)] + list(args), cwd=cwd,
                                env=dict(self.env, **(env or {})), **kwargs)

    def start(self, *extra):
        done = self.run(["--server", "start"] + list(extra), cwd=self.root)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(b"nbnumba: resident renderer started (pid "), done.stdout
        self.pid = int(done.stdout.split(b"(pid ")[1].split(b";")[0])
        return self

    def status(self):
        return self.run(["--server", "status"], cwd=self.root)

    def served(self):
        text = self.status().stdout.decode()
        return int(text.split("runs: ")[1].split(" served")[0])

    def stop(self):
        if self.pid is not None and not _gone(self.pid):
            self.run(["--server", "stop"], cwd=self.root, timeout=120)
        for pid in renderer_pids(self.root):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def renderer():
    """One renderer for the tests that leave it running."""
    server = Renderer().start()
    yield server
    server.stop()


@pytest.fixture
def fresh():
    """A renderer (not started) for a test that stops or kills it."""
    server = Renderer()
    yield server
    server.stop()


def _tree(folder):
    """{relative path: bytes} of every file under ``folder``."""
    folder = Path(folder)
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def _no_compile_notice(text):
    """stderr without the line numba's compile notice adds to whichever run compiles
    first (it depends on the cache, not on the way the command ran)."""
    notice = b" compiling " if isinstance(text, bytes) else " compiling "
    lines = text.splitlines(keepends=True)
    return text[:0].join(line for line in lines if notice not in line[:40])


def _staged(case, folder):
    folder.mkdir(parents=True, exist_ok=True)
    stage_case(case, folder)
    return folder


# ------------------------------------------------------------------ same run, same bytes


def test_every_golden_case_through_the_renderer_equals_the_command_in_process(renderer,
                                                                               tmp_path):
    """Files, stdout, stderr and exit status of every golden case, through the renderer
    and in-process (the command's own main, as the test suite runs it)."""
    before = renderer.served()
    differing = []
    for case_id, case in CASES.items():
        served = _staged(case, tmp_path / "served" / case_id)
        local = _staged(case, tmp_path / "local" / case_id)
        done = renderer.run(case["args"], cwd=served)
        expected = run_cli(case["args"], local)
        if (done.returncode, done.stdout.decode(), _no_compile_notice(done.stderr.decode()),
                _tree(served)) != (expected.code, expected.out,
                                   _no_compile_notice(expected.err), _tree(local)):
            differing.append(case_id)
    assert differing == []
    assert renderer.served() - before == len(CASES)


@pytest.mark.parametrize("case_id", ["mosflm_basic", "fdump_read", "source_weights_mat",
                                     "roi_mask_zero_block", "noise_seed_a",
                                     "err_missing_hkl_file"])
def test_renderer_and_cold_process_give_the_same_bytes(renderer, tmp_path, case_id):
    """A cold process (NBNUMBA_SERVER=off) and the renderer: the same stdout and stderr
    bytes, the same files, the same status."""
    case = CASES[case_id]
    served = _staged(case, tmp_path / "served")
    cold = _staged(case, tmp_path / "cold")
    a = renderer.run(case["args"], cwd=served)
    b = renderer.run(case["args"], cwd=cold, env={"NBNUMBA_SERVER": "off"})
    assert (a.returncode, a.stdout, _no_compile_notice(a.stderr)) == \
        (b.returncode, b.stdout, _no_compile_notice(b.stderr))
    assert _tree(served) == _tree(cold)


def test_companion_programs_through_the_renderer(renderer, tmp_path):
    examples = Path(__file__).resolve().parent.parent / "examples"
    geometry = ["-detpixels", "32", "-pixel", "0.4", "-distance", "100", "-seed", "3"]
    runs = [("nb-nonbragg", ["-stol", str(examples / "water.stol"), "-thickness", "0.001"]
             + geometry),
            ("nb-noisify", ["-floatfile", "floatimage.bin", "-psf", "gauss", "-readout", "2"]
             + geometry)]
    before = renderer.served()
    for where in ("served", "cold"):
        (tmp_path / where).mkdir()
    for prog, args in runs:
        a = renderer.run(args, cwd=tmp_path / "served", prog=prog)
        b = renderer.run(args, cwd=tmp_path / "cold", prog=prog, env={"NBNUMBA_SERVER": "off"})
        assert a.returncode == 0, a.stderr
        assert (a.returncode, a.stdout, _no_compile_notice(a.stderr)) == \
            (b.returncode, b.stdout, _no_compile_notice(b.stderr))
    assert _tree(tmp_path / "served") == _tree(tmp_path / "cold")
    assert renderer.served() - before == 2


def test_eight_concurrent_clients_with_their_own_directories_and_umasks(renderer, tmp_path):
    umasks = [0o022, 0o077, 0o002, 0o027, 0o000, 0o007, 0o037, 0o026]
    runs = []
    before = renderer.served()
    for i, mask in enumerate(umasks):
        folder = tmp_path / ("client%d" % i)
        folder.mkdir()
        args = CELL + ["-detpixels", str(24 + 8 * i), "-seed", str(i + 1), "-noprogress",
                       "-misset", str(i), "0", "0"]
        runs.append((folder, args, mask, renderer.popen(
            args, folder, umask=mask, stdout=subprocess.PIPE, stderr=subprocess.PIPE)))
    for folder, args, mask, run in runs:
        out, err = run.communicate(timeout=600)
        expected = run_cli(args, _staged({"inputs": []}, folder.with_name(folder.name + "-ref")))
        assert (run.returncode, out.decode(), err.decode()) == \
            (expected.code, expected.out, expected.err)
        assert _tree(folder) == _tree(folder.with_name(folder.name + "-ref"))
        for path in folder.iterdir():
            assert path.stat().st_mode & 0o777 == 0o666 & ~mask, (path, oct(mask))
    assert renderer.served() - before == len(umasks)


def test_a_run_that_needs_another_environment_runs_in_process(renderer, tmp_path):
    """A variable read at start-up (NPY_*) that differs: the client renders in-process
    (NBNUMBA_DEBUG says why) with the same result."""
    before = renderer.served()
    done = renderer.run(TINY, cwd=tmp_path, env={"NPY_TEST_VARIABLE": "1",
                                                 "NBNUMBA_DEBUG": "1"})
    assert done.returncode == 0
    assert done.stderr == (b"nbnumba: note: rendering in-process, not in the resident "
                           b"renderer: the environment variable NPY_TEST_VARIABLE differs\n")
    assert renderer.served() == before


def test_umask_environment_and_relative_paths_follow_the_client(renderer, tmp_path):
    """Relative output paths land in the client's directory, new files get its umask,
    and its environment (here TZ) applies: the same bytes as a cold run."""
    (tmp_path / "a" / "sub").mkdir(parents=True)
    (tmp_path / "b" / "sub").mkdir(parents=True)
    args = TINY + ["-intfile", "sub/x.img", "-floatfile", "sub/x.bin", "-nopgm", "-nonoise"]
    env = {"TZ": "Pacific/Kiritimati"}
    a = renderer.run(args, cwd=tmp_path / "a", env=env, umask=0o077)
    b = renderer.run(args, cwd=tmp_path / "b", env=dict(env, NBNUMBA_SERVER="off"),
                     umask=0o077)
    assert a.returncode == b.returncode == 0
    assert (a.stdout, a.stderr) == (b.stdout, b.stderr)
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")
    assert sorted(_tree(tmp_path / "a")) == ["sub/x.bin", "sub/x.img"]
    assert (tmp_path / "a" / "sub" / "x.img").stat().st_mode & 0o777 == 0o600


def test_a_terminal_gets_the_progress_meter_through_the_renderer(renderer, tmp_path):
    import pty
    before = renderer.served()
    master, slave = pty.openpty()
    try:
        run = renderer.popen(CELL + ["-detpixels", "128", "-mosaic", "1", "-mosaic_dom", "100",
                                     "-phisteps", "10", "-seed", "1"], tmp_path,
                             stdin=slave, stdout=slave, stderr=slave)
        os.close(slave)
        text = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the terminal's last writer is gone
                break
            if not chunk:
                break
            text += chunk
        assert run.wait(timeout=600) == 0
    finally:
        os.close(master)
    assert b"\r  0% done" in text and b"\r100% done" in text, text[-400:]
    assert renderer.served() - before == 1


# ------------------------------------------------------------------ signals and faults


@pytest.fixture(scope="module")
def warm_kernel(renderer, tmp_path_factory):
    """The heavy render's kernel compiled (or loaded) first, so that signals reach it."""
    done = renderer.run(CELL + ["-detpixels", "2", "-noprogress"],
                        cwd=tmp_path_factory.mktemp("warm"))
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("signum,code,message", [
    (signal.SIGINT, 130, b"nbnumba: interrupted\n"),
    (signal.SIGTERM, 143, b"nbnumba: terminated\n"),
])
def test_a_stop_signal_to_the_client_stops_the_run_at_once(renderer, warm_kernel, tmp_path,
                                                           signum, code, message):
    before = renderer.served()
    run = renderer.popen(HEAVY, tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    took, rest = stop_while_rendering(run, signum)
    assert took < PROMPT, "took %.1f s to stop" % took
    assert (run.returncode, rest) == (code, message)
    assert os.listdir(tmp_path) == []
    assert renderer.served() - before == 1


def _paused(renderer, folder, env=None):
    """A run through the renderer that waits 60 s with every output staged under a
    temporary name; returns (client, marker)."""
    marker = folder.parent / (folder.name + ".staged")
    run = renderer.popen(TINY, folder, env=dict(env or {}, NBNUMBA_TEST_PAUSE=
                                                "staged:60:%s" % marker),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _wait_until(marker.exists, what="the staged outputs")
    names = [p.name for p in folder.iterdir()]
    assert len(names) == 4 and all(n.startswith(".nbnumba-") for n in names), names
    return run, marker


def test_a_client_killed_with_sigkill_cancels_its_run(renderer, tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    run, _ = _paused(renderer, folder)
    children = _children(renderer.pid)
    assert len(children) == 1
    run.kill()
    run.communicate()
    _wait_until(lambda: _gone(children[0]), what="the run's process to stop")
    assert os.listdir(folder) == []          # no output, no temporary file


def test_the_renderer_killed_mid_run_leaves_nothing_and_says_so(renderer, tmp_path):
    """The run's process is killed (as by the OOM killer): the client removes its
    temporary files and says so in one line; status 128 + 9."""
    folder = tmp_path / "run"
    folder.mkdir()
    run, _ = _paused(renderer, folder)
    children = _children(renderer.pid)
    assert len(children) == 1
    os.kill(children[0], signal.SIGKILL)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 137
    assert err == (b"nbnumba: error: the resident renderer stopped during the run (killed by "
                   b"SIGKILL); nothing was written\n")
    assert os.listdir(folder) == []


def test_the_whole_renderer_killed_mid_run_leaves_nothing_and_says_so(fresh, tmp_path):
    fresh.start()
    folder = tmp_path / "run"
    folder.mkdir()
    run, _ = _paused(fresh, folder)
    children = _children(fresh.pid)
    os.kill(fresh.pid, signal.SIGKILL)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 9
    assert err == (b"nbnumba: error: the resident renderer stopped during the run; nothing "
                   b"was written\n")
    assert os.listdir(folder) == []
    _wait_until(lambda: all(_gone(pid) for pid in children), what="the run's process")
    # the next run finds no renderer and renders in-process
    again = fresh.run(TINY, cwd=folder)
    assert again.returncode == 0 and again.stderr == b""


# ------------------------------------------------------------------ lifecycle and security


def _installed_package(cwd):
    """The folder of the nbnumba the commands run (the installed one: with a regular
    install it is not the checkout the tests import from)."""
    found = subprocess.run([sys.executable, "-c", "import nbnumba; print(nbnumba.__file__)"],
                           cwd=cwd, capture_output=True, text=True, check=True)
    return Path(found.stdout.strip()).resolve().parent


def test_a_renderer_whose_files_changed_is_bypassed_and_leaves(fresh, tmp_path):
    """An upgrade or an edit of the installation: the renderer answers "stale", the run
    renders in-process, and the renderer exits."""
    compiled = fresh.run(TINY, cwd=tmp_path, env={"NBNUMBA_SERVER": "off"})
    assert compiled.returncode == 0, compiled.stderr  # the in-process run below compiles nothing
    fresh.start()
    source = _installed_package(tmp_path) / "_version.py"
    stat = source.stat()
    try:
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        done = fresh.run(TINY, cwd=tmp_path, env={"NBNUMBA_DEBUG": "1"})
    finally:
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert done.returncode == 0
    assert done.stderr == (b"nbnumba: note: rendering in-process, not in the resident "
                           b"renderer: nbnumba's files changed since the renderer started\n")
    _wait_until(lambda: _gone(fresh.pid), what="the stale renderer to exit")
    assert list(fresh.folder.glob("*.sock")) == []


def test_idle_timeout(fresh):
    fresh.start("--idle-timeout", "1")
    _wait_until(lambda: _gone(fresh.pid), what="the idle renderer to exit")
    assert list(fresh.folder.glob("*.sock")) == []
    assert fresh.status().returncode == 3


def test_server_commands(fresh):
    none = fresh.status()
    assert none.returncode == 3 and none.stdout.startswith(
        b"nbnumba: no resident renderer is running (")
    fresh.start()
    again = fresh.run(["--server", "start"], cwd=fresh.root)
    assert again.stdout == b"nbnumba: the resident renderer is already running (pid %d)\n" \
        % fresh.pid
    lines = fresh.status().stdout.decode().splitlines()
    assert lines[0] == "nbnumba: resident renderer running"
    assert lines[1].startswith("  pid %d, nbnumba " % fresh.pid)
    stopped = fresh.run(["--server", "stop"], cwd=fresh.root)
    assert stopped.stdout == b"nbnumba: resident renderer stopped (pid %d)\n" % fresh.pid
    assert _gone(fresh.pid)
    bad = fresh.run(["--server", "restart"], cwd=fresh.root)
    assert bad.returncode == 9 and bad.stderr.startswith(b"nbnumba: error: unknown --server")
    bad = fresh.run(["--server", "start", "--idle-timeout", "-5"], cwd=fresh.root)
    assert bad.stderr == b"nbnumba: error: --idle-timeout -5 is not a number of seconds above 0\n"


def test_a_bad_server_setting_is_one_line(renderer, tmp_path):
    done = renderer.run(TINY, cwd=tmp_path, env={"NBNUMBA_SERVER": "sometimes"})
    assert done.returncode == 9
    assert done.stderr == (b"nbnumba: error: NBNUMBA_SERVER=sometimes is not one of on (use a "
                           b"running resident renderer, the default), auto (also start one), "
                           b"off (never use one)\n")
    assert os.listdir(tmp_path) == []


def test_a_directory_open_to_others_is_never_used(fresh, tmp_path):
    fresh.folder.mkdir(mode=0o755)
    os.chmod(fresh.folder, 0o755)
    done = fresh.run(["--server", "start"], cwd=tmp_path)
    assert done.returncode == 9
    assert done.stderr == (b"nbnumba: error: cannot start the resident renderer: %s may be "
                           b"used by other users (mode 0755; 0700 expected)\n"
                           % os.fsencode(fresh.folder))
    run = fresh.run(TINY, cwd=tmp_path)
    assert run.returncode == 0 and run.stderr == b""


def test_auto_starts_a_renderer_for_the_next_runs(fresh, tmp_path):
    first = fresh.run(TINY, cwd=tmp_path, env={"NBNUMBA_SERVER": "auto"})
    assert first.returncode == 0 and first.stderr == b""
    _wait_until(lambda: fresh.status().returncode == 0, timeout=300,
                what="the renderer started by NBNUMBA_SERVER=auto")
    fresh.pid = int(fresh.status().stdout.split(b"pid ")[1].split(b",")[0])
    second = fresh.run(TINY, cwd=tmp_path, env={"NBNUMBA_SERVER": "auto"})
    assert second.returncode == 0 and second.stdout == first.stdout
    assert fresh.served() == 1


OTHER_UID = 65534


def _as_other_user():
    if os.geteuid() != 0 or not os.path.exists("/usr/bin/python3"):
        pytest.skip("needs root (to run a process as uid %d) and /usr/bin/python3" % OTHER_UID)


def test_the_renderer_refuses_another_user(fresh, tmp_path):
    """A process of another uid that reaches the socket (its directory opened on purpose)
    gets no answer: the renderer closes the connection without forking."""
    _as_other_user()
    fresh.start()
    socket_path = next(fresh.folder.glob("*.sock"))
    os.chmod(fresh.root, 0o711)
    os.chmod(fresh.folder, 0o711)
    os.chmod(socket_path, 0o777)
    probe = ("import socket, sys, marshal\n"
             "s = socket.socket(socket.AF_UNIX); s.settimeout(20); s.connect(sys.argv[1])\n"
             "m = marshal.dumps(('status',))\n"
             "try:\n"
             "    s.sendall(len(m).to_bytes(4, 'little') + m)\n"
             "    print(repr(s.recv(100)))\n"
             "except (BrokenPipeError, ConnectionResetError):\n"
             "    print('closed')\n")
    done = subprocess.run(["/usr/bin/python3", "-c", probe, str(socket_path)],
                          user=OTHER_UID, group=OTHER_UID, extra_groups=[],
                          capture_output=True, text=True, timeout=60, cwd="/")
    assert done.stdout.strip() in ("b''", "closed"), done.stderr
    assert "refused a connection from uid %d" % OTHER_UID in \
        next(fresh.folder.glob("*.log")).read_text()


def test_a_client_never_talks_to_another_users_listener(fresh, tmp_path):
    """A socket at the renderer's path served by another uid: the client checks the
    peer's uid, sends nothing and renders in-process."""
    _as_other_user()
    fresh.folder.mkdir(mode=0o700)
    key_holder = fresh.run(["--server", "status"], cwd=tmp_path).stdout
    socket_path = key_holder.split(b"(")[1].split(b")")[0].decode()
    other = Path(tempfile.mkdtemp(prefix="nbo", dir="/tmp"))
    os.chown(other, OTHER_UID, OTHER_UID)
    try:
        listener = ("import socket, sys\n"
                    "s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)\n"
                    "print('listening', flush=True)\n"
                    "c, _ = s.accept(); c.settimeout(20)\n"
                    "print('received', len(c.recv(100000)), flush=True)\n")
        fake = subprocess.Popen(["/usr/bin/python3", "-c", listener, str(other / "s")],
                                user=OTHER_UID, group=OTHER_UID, extra_groups=[], cwd="/",
                                stdout=subprocess.PIPE, text=True)
        assert fake.stdout.readline() == "listening\n"
        os.rename(other / "s", socket_path)
        done = fresh.run(TINY, cwd=tmp_path)
        assert done.returncode == 0 and done.stderr == b""
        assert fake.communicate(timeout=60)[0] == "received 0\n"
    finally:
        shutil.rmtree(other, ignore_errors=True)


# ------------------------------------------------------------------ a good neighbour


def _proc(pid, name):
    return Path("/proc/%d/%s" % (pid, name)).read_text()


def _rss_kib(pid):
    line = next(x for x in _proc(pid, "status").splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1])


def _cpu_ticks(pid):
    fields = _proc(pid, "stat").rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


def test_idle_renderer_uses_no_cpu_and_keeps_its_memory_after_a_large_render(renderer,
                                                                             tmp_path):
    """The runs happen in children: after a 4096 x 4096 render (a 64 MiB float image)
    the renderer's resident memory is what it was; idle, it uses no CPU time."""
    idle_rss = _rss_kib(renderer.pid)
    done = renderer.run(CELL + ["-detpixels", "4096", "-N", "1", "-noprogress", "-nopgm",
                                "-nonoise", "-floatfile", os.devnull, "-intfile",
                                os.devnull], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    status = renderer.status().stdout.decode()
    last_peak = float(status.split("last run ")[1].split(" MiB")[0])
    assert last_peak * 1024 > idle_rss + 64 * 1024          # the child held the image
    assert _rss_kib(renderer.pid) < idle_rss + 4 * 1024        # the renderer did not
    ticks = _cpu_ticks(renderer.pid)
    time.sleep(3.0)
    assert _cpu_ticks(renderer.pid) - ticks <= 1               # at most one clock tick
    # no thread pool (OpenMP, numba's, the BLAS's) waits in the renderer: it forks alone
    assert "\n  1 thread; " in renderer.status().stdout.decode()
