"""Timings that need nbnumba imported; run in a child process by :mod:`profiles.bench`.

Usage (one JSON object in, one JSON object on the last line of stdout)::

    python -m profiles.worker kernel '{"args": [...], "repeats": 3}'
    python -m profiles.worker compile '{"args": [...]}'

``kernel``: prepare the case, render once (warm-up, compiles or loads the cache), then
time ``repeats`` renders. ``compile``: time import, set-up and the first and second
render of a (tiny) case; first - second render is the kernels' compile (or cache-load)
time, ``startup_s`` (import + parse + prepare + first render) also holds what the set-up
compiles. Threads come from the environment (``NUMBA_NUM_THREADS``), the numba cache
from ``NUMBA_CACHE_DIR`` if set. Input files
named by the flags are read relative to the current directory. All times in seconds.
"""
import json
import sys
import time


def _timed(fn, *args):
    """(result, seconds) of ``fn(*args)``, wall-clock."""
    t0 = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - t0


def _import_nbnumba():
    """Import nbnumba and its flag parser; returns (nbnumba, config_from_args)."""
    import nbnumba
    from nbnumba_cli.parse import config_from_args
    return nbnumba, config_from_args


def _prepare(args):
    """Parse flags and prepare the set-up; returns (nbnumba, setup, timings dict)."""
    (nb, config_from_args), import_s = _timed(_import_nbnumba)
    (cfg, _out), parse_s = _timed(config_from_args, args, ".")
    setup, prepare_s = _timed(nb.prepare, cfg)
    return nb, setup, {"import_s": import_s, "parse_s": parse_s, "prepare_s": prepare_s}


def evaluation_counts(setup):
    """What one render computes: pixels (ROI, unmasked) and inner-loop evaluations.

    evaluations = pixels x oversample^2 x sources x phi steps x mosaic domains x layers.
    """
    from nbnumba.engine import region_rows
    row0, row1, col0, col1 = region_rows(setup)
    pixels = (row1 - row0) * (col1 - col0)
    if setup.mask is not None:
        mask = setup.mask.reshape(setup.spixels, setup.fpixels)[row0:row1, col0:col1]
        pixels = int((mask != 0).sum())
    counts = {
        "fpixels": int(setup.fpixels), "spixels": int(setup.spixels), "pixels": int(pixels),
        "oversample": int(setup.oversample), "sources": int(setup.sources.count),
        "phi_steps": int(setup.phi_steps), "mosaic_domains": int(setup.mosaic_domains),
        "layers": int(setup.layers),
    }
    per_pixel = (counts["oversample"] ** 2 * counts["sources"] * counts["phi_steps"]
                 * counts["mosaic_domains"] * counts["layers"])
    counts["evaluations"] = pixels * per_pixel
    return counts


def _versions(nb):
    import numba
    return {"nbnumba": nb.__version__, "numba": numba.__version__,
            "numba_threads": numba.get_num_threads()}


def kernel(request):
    """Warm-up render, then ``repeats`` timed renders of the case (seconds each)."""
    nb, setup, info = _prepare(request["args"])
    _, info["warmup_s"] = _timed(nb.render, setup)
    info["render_s"] = [_timed(nb.render, setup)[1] for _ in range(int(request["repeats"]))]
    info["counts"] = evaluation_counts(setup)
    info.update(_versions(nb))
    return info


def compile_(request):
    """Import, set-up, first and second render of the case (s each);
    ``compile_s`` = first - second render, ``startup_s`` = everything up to the first
    render's end."""
    nb, setup, info = _prepare(request["args"])
    _, info["first_render_s"] = _timed(nb.render, setup)
    _, info["second_render_s"] = _timed(nb.render, setup)
    info["compile_s"] = max(info["first_render_s"] - info["second_render_s"], 0.0)
    info["startup_s"] = (info["import_s"] + info["parse_s"] + info["prepare_s"]
                         + info["first_render_s"])
    info.update(_versions(nb))
    return info


MODES = {"kernel": kernel, "compile": compile_}


def main(argv=None):
    """Entry point: ``MODE JSON``; prints the result as one JSON line."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in MODES:
        sys.stderr.write("usage: python -m profiles.worker {kernel|compile} JSON\n")
        return 2
    result = MODES[argv[0]](json.loads(argv[1]))
    sys.stdout.write("\n" + json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
