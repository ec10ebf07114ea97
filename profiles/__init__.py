"""Benchmark suite of nbnumba against the nanoBragg C program.

Run ``python -m profiles.bench --help``. Modules:

* :mod:`profiles.cases` — the benchmark cases (command-line flags);
* :mod:`profiles.bench` — the driver: whole-process timings, memory, C comparison, report;
* :mod:`profiles.worker` — runs inside a child process that imports nbnumba (kernel and
  compile timings), so that the driver itself needs only the standard library and NumPy;
* :mod:`profiles.procs` — child processes timed with their own resource usage;
* :mod:`profiles.images` — float-image comparison with the C program.
"""
