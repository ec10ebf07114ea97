"""The commands' stop signals (nbnumba_cli.stopsignals): a SIGTERM whose exception Python
cannot propagate (it lands in a callback invoked from C) still stops the command, with
nothing printed by Python and the stop status."""
import subprocess
import sys
import textwrap

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
