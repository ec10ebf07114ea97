"""The commands' stop signals (nbnumba_cli.stopsignals): a SIGTERM whose exception Python
cannot propagate (it lands in a callback invoked from C) still stops the command, with
nothing printed by Python and the stop status; and a storm of SIGTERMs at every moment of
each command (real processes, as the console scripts start them)."""
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

SWALLOWED_IN_CALLBACK = textwrap.dedent("""
    import gc, os, signal, sys, weakref
    from nbnumba_cli import stopsignals

    stopsignals.install()

    class Thing:
        pass

    def callback(ref):
        os.kill(os.getpid(), signal.SIGTERM)
        total = 0
        for i in range(1000):  # the handler runs here, inside the callback
            total += i

    thing = Thing()
    ref = weakref.ref(thing, callback)
    try:
        del thing            # the callback runs; its exception cannot propagate
        for i in range(10 ** 7):
            pass             # the signal, sent again, is raised here
        print("not stopped")
    except stopsignals.Terminated as exc:
        print("stopped", exc.signum)
""")

LOST_ENTIRELY = textwrap.dedent("""
    import os, signal, sys
    from nbnumba_cli import stopsignals
    from nbnumba_cli.guard import say_stopped

    stopsignals.install()
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        for i in range(1000):
            pass
    except BaseException:
        pass                  # a careless handler loses the stop
    status = stopsignals.exit_status(0, lambda s: say_stopped("prog", s))
    sys.exit(status)
""")


def _run(source):
    return subprocess.run([sys.executable, "-c", source], capture_output=True, text=True,
                          timeout=60)


def test_a_signal_lost_in_a_callback_is_raised_again_outside_it():
    run = _run(SWALLOWED_IN_CALLBACK)
    assert run.stdout.strip() == "stopped 15"
    assert run.stderr == ""          # no "Exception ignored ... Traceback"


def test_a_command_that_lost_its_stop_signal_still_leaves_as_stopped():
    run = _run(LOST_ENTIRELY)
    assert run.returncode == 143
    assert run.stderr == "prog: terminated\n"


def test_sigint_ignored_at_start_stays_ignored():
    source = textwrap.dedent("""
        import signal
        from nbnumba_cli import stopsignals
        stopsignals.install()
        print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN,
              signal.getsignal(signal.SIGTERM) is stopsignals.handler)
    """)
    run = subprocess.run([sys.executable, "-c", "import signal; signal.signal(signal.SIGINT, "
                          "signal.SIG_IGN); import subprocess, sys; sys.exit(subprocess.call("
                          "[sys.executable, '-c', %r]))" % source], capture_output=True,
                         text=True, timeout=60)
    assert run.stdout.strip() == "True True"


SERIES_LIKE_HANDLER = textwrap.dedent("""
    import os, signal, weakref
    from nbnumba_cli import stopsignals

    stopsignals.install()
    seen = []

    def once_only(signum, frame):       # like the series' handler: a repeat is ignored
        if seen:
            return
        seen.append(signum)
        stopsignals.note(signum)
        raise stopsignals.Terminated(signum)

    signal.signal(signal.SIGTERM, once_only)

    class Thing:
        pass

    def callback(ref):
        os.kill(os.getpid(), signal.SIGTERM)
        for i in range(1000):           # the handler raises here; the exception is lost
            pass

    thing = Thing()
    ref = weakref.ref(thing, callback)
    try:
        del thing
        for i in range(10 ** 7):
            pass
        print("not stopped")
    except stopsignals.Terminated as exc:
        print("stopped", exc.signum, signal.getsignal(signal.SIGTERM) is once_only)
""")

ERROR_AFTER_STOP = textwrap.dedent("""
    import os, signal, sys
    from nbnumba_cli import stopsignals
    from nbnumba_cli.guard import run_guarded

    stopsignals.install()

    def run(argv):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            for i in range(1000):
                pass
        except KeyboardInterrupt:
            raise ImportError("a C module failed to import")   # as numba does
        return 0

    sys.exit(run_guarded(run, [], "prog"))
""")


def test_a_lost_stop_is_raised_again_past_a_handler_that_ignores_repeats():
    run = _run(SERIES_LIKE_HANDLER)
    assert run.stdout.strip() == "stopped 15 True"     # and the command's handler is back
    assert run.stderr == ""


def test_an_error_raised_by_a_stop_is_the_stop():
    run = _run(ERROR_AFTER_STOP)
    assert run.returncode == 143
    assert run.stderr == "prog: terminated\n"


# ---------------------------------------------------------------------------------------
# the storm: SIGTERM at 20 moments from 0.2 to 0.6 s into each command

STORM_SIGNALS = 20
CELL = ["-cell", "70", "80", "90", "90", "90", "90", "-default_F", "100", "-seed", "1"]


def _script(entry):
    """The command line of a console script (what the installed script runs)."""
    return [sys.executable, "-c", "from nbnumba_cli.entry import %s; %s()" % (entry, entry)]


@pytest.fixture(scope="module")
def storm_inputs(tmp_path_factory):
    """A scattering table and a large float image (every command still runs at 0.6 s)."""
    import numpy as np
    d = tmp_path_factory.mktemp("storm_inputs")
    (d / "water.stol").write_text("0 2.6\n0.1 2.2\n0.2 1.5\n0.3 1.1\n0.5 0.8\n")
    np.full((4096, 4096), 50.0, dtype="<f4").tofile(d / "big.bin")
    return d


STORM_COMMANDS = {
    "nbnumba -nexus": ("nbnumba", "nbnumba: terminated\n", lambda d: CELL + [
        "-N", "10", "-detpixels", "2048", "-oversample", "2", "-noprogress",
        "-nexus", "o.nxs"]),
    "nb-noisify": ("nb_noisify", "nb-noisify: terminated\n", lambda d: [
        "-floatfile", str(d / "big.bin"), "-seed", "1", "-readout", "3", "-flicker", "0.02"]),
    "nb-nonbragg": ("nb_nonbragg", "nb-nonbragg: terminated\n", lambda d: [
        "-stol", str(d / "water.stol"), "-detpixels", "2048", "-oversample", "3",
        "-divergence", "1", "-divsteps", "5", "-seed", "1"]),
    # stopped before its run started, the series has no run to complete yet
    "nbnumba-series": ("nbnumba_series",
                       ("nbnumba-series: terminated (rerun with --resume to complete)\n",
                        "nbnumba-series: terminated\n"),
                       lambda d: CELL + ["-N", "5", "-detpixels", "128", "-noprogress",
                                         "--frames", "2000", "--frame-osc", "0.01",
                                         "--template", "s/f_{:04d}"]),
}


def _handles_sigterm(pid):
    """True once process ``pid`` catches SIGTERM (its handler is in place), from
    /proc/PID/status; True where that cannot be read."""
    try:
        with open("/proc/%d/status" % pid) as status:
            for line in status:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    except (OSError, ValueError):
        return True
    return True


def _signal_after(proc, delay):
    """Send SIGTERM ``delay`` s after ``proc`` started, and not before its handler is in
    place: before that, Python itself is starting (its interpreter and ``site``; some
    30-60 ms unloaded, far more on a loaded machine), where no code of ours can act."""
    start = time.monotonic()
    while proc.poll() is None and not _handles_sigterm(proc.pid):
        time.sleep(0.001)
    time.sleep(max(0.0, start + delay - time.monotonic()))
    proc.send_signal(signal.SIGTERM)


def _staged(directory):
    """Temporary and staged files left anywhere under ``directory``."""
    return [str(p) for p in Path(directory).rglob("*")
            if p.name.endswith(".part") or p.name.startswith(".nbnumba-stage-")]


@pytest.mark.parametrize("command", list(STORM_COMMANDS))
def test_sigterm_storm(command, storm_inputs, tmp_path):
    """Every SIGTERM, whenever it lands (imports, numba's cache loads and their callbacks,
    the render, the writing): status 143, the one line (after the compile notice, if
    numba compiles), nothing from Python, no temporary file and no output left."""
    entry, lines, args = STORM_COMMANDS[command]
    lines = (lines,) if isinstance(lines, str) else lines
    prog = lines[0].split(":")[0]
    bad = []
    for i in range(STORM_SIGNALS):
        delay = 0.2 + 0.4 * i / (STORM_SIGNALS - 1)
        work = tmp_path / ("run%02d" % i)
        work.mkdir()
        proc = subprocess.Popen(_script(entry) + args(storm_inputs), cwd=work,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            _signal_after(proc, delay)
            _, err = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        shown = "".join(l for l in err.splitlines(True)
                        if not l.startswith(prog + ": compiling "))
        left = _staged(work)
        outputs = [p.name for p in work.iterdir() if p.name != "s"]
        if proc.returncode != 143 or shown not in lines or left or outputs:
            bad.append((round(delay, 3), proc.returncode, err[-400:], left, outputs))
    assert not bad, bad


PRINTED_BY_C_CODE = textwrap.dedent("""
    import ctypes
    from nbnumba_cli import stopsignals

    stopsignals.install()
    # C code that runs Python and prints its error with PyErr_Print, as numpy's
    # import_array() does when a signal cuts the import of an extension module short
    status = ctypes.pythonapi.PyRun_SimpleString(
        b"import os, signal\\nos.kill(os.getpid(), signal.SIGTERM)\\n"
        b"for i in range(1000): pass\\n")
    print("after", status, stopsignals.received())
""")


def test_a_stop_that_c_code_prints_is_not_printed():
    run = _run(PRINTED_BY_C_CODE)
    assert run.stdout.strip() == "after -1 15"
    assert run.stderr == ""


SIGNAL_WHILE_LEAVING = textwrap.dedent("""
    import os, signal, sys
    from nbnumba_cli import stopsignals
    from nbnumba_cli.console import leave

    stopsignals.install()
    stopsignals.ignore()              # what leave() does first: the work is over
    os.kill(os.getpid(), signal.SIGTERM)
    for i in range(1000):             # only noted: nothing is raised here
        pass
    leave("prog", 0)                  # every output in place, but it was stopped
""")


def test_a_signal_while_the_command_leaves_still_makes_it_stopped():
    run = _run(SIGNAL_WHILE_LEAVING)
    assert run.returncode == 143
    assert run.stderr == "prog: terminated\n"


WRAPPED_WHILE_IMPORTING = textwrap.dedent("""
    import os, signal
    from nbnumba_cli import entry

    def load():                       # a command's import, cut by SIGTERM where Python
        class Field:                  # wraps the exception (a RuntimeError)
            def __set_name__(self, owner, name):
                os.kill(os.getpid(), signal.SIGTERM)
                for i in range(1000):
                    pass

        class Setup:
            messages = Field()
        return lambda: print("not stopped")

    entry._launch("prog", load)
""")


def test_a_stop_wrapped_in_another_error_at_start_is_the_stop():
    run = _run(WRAPPED_WHILE_IMPORTING)
    assert run.returncode == 143, run.stderr
    assert run.stdout == "" and run.stderr == "prog: terminated\n"


SWALLOWED_WHILE_IMPORTING = textwrap.dedent("""
    import os, signal
    from nbnumba_cli import entry

    def load():                       # an import whose code swallows everything
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            for i in range(1000):
                pass
        except:                       # noqa: E722 (as some libraries do)
            pass
        return lambda: print("the command's work ran")

    entry._launch("prog", load)
""")


def test_a_stop_swallowed_while_importing_stops_before_the_work():
    run = _run(SWALLOWED_WHILE_IMPORTING)
    assert run.returncode == 143, run.stderr
    assert run.stdout == "" and run.stderr == "prog: terminated\n"


SIGNAL_AS_A_SERVED_RUN_ENDS = textwrap.dedent("""
    import os, signal
    from nbnumba_cli import client, stopsignals

    stopsignals.install()
    session = client.Session.__new__(client.Session)   # the client's handler during a run
    session.pending = []
    signal.signal(signal.SIGTERM, session._note)
    os.kill(os.getpid(), signal.SIGTERM)   # came as the renderer reported the run's end
    for i in range(1000):
        pass
    client._leave("prog", 0)               # the run's own status: 0
""")


def test_a_signal_as_a_served_run_ends_still_makes_the_client_stopped():
    """The resident renderer's client leaves as a command run in-process does: a stop
    signal it received and had no time to forward is its status and line."""
    run = _run(SIGNAL_AS_A_SERVED_RUN_ENDS)
    assert run.returncode == 143
    assert run.stderr == "prog: terminated\n"
