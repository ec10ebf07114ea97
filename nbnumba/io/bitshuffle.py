"""Bitshuffle-LZ4 chunks made outside HDF5, on several threads.

HDF5 runs its filters on one thread, under h5py's lock. The bitshuffle filter shipped
with ``hdf5plugin`` (filter 32008) also exports its compression functions; called
through :mod:`ctypes` (which releases the GIL) they compress parts of one chunk at once
on several cores. The chunk is then stored as it is
(``dataset.id.write_direct_chunk``), byte for byte what the filter itself would store,
so every reader of the filter (h5py with ``hdf5plugin``, dxtbx, XDS' plugin) decodes it.

A chunk of the filter is: the uncompressed size in bytes (8 bytes, big-endian), the
block size in bytes (4 bytes, big-endian), then every block of ``block`` elements
(the last may be shorter) as its compressed size (4 bytes, big-endian) and the LZ4
block of its bit-shuffled elements. Blocks are independent, so parts of the chunk cut
at block boundaries are compressed separately and joined.

:func:`available` is False (and the caller uses HDF5's filter) when ``hdf5plugin`` or
its bitshuffle library or functions cannot be found, or when they do not make the
filter's bytes (checked once per process on a small array).
"""
import ctypes
import glob
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

#: the most threads one chunk is compressed on
MAX_THREADS = 4

_lock = threading.RLock()
_state = {"lib": None, "loaded": False, "pool": None, "pid": None}


def _library_path():
    import hdf5plugin
    directory = hdf5plugin.PLUGIN_PATH
    try:
        ext = hdf5plugin.get_config().build_config.filter_file_extension
        path = os.path.join(directory, "libh5bshuf" + ext)
        if os.path.exists(path):
            return path
    except AttributeError:
        pass
    found = sorted(glob.glob(os.path.join(directory, "libh5bshuf.*")))
    return found[0] if found else None


def _load():
    """The bitshuffle library with its functions typed, or None."""
    try:
        path = _library_path()
        if path is None:
            return None
        lib = ctypes.CDLL(path)
        size = ctypes.c_size_t
        lib.bshuf_compress_lz4.restype = ctypes.c_int64
        lib.bshuf_compress_lz4.argtypes = [ctypes.c_void_p, ctypes.c_void_p, size, size,
                                           size]
        lib.bshuf_compress_lz4_bound.restype = size
        lib.bshuf_compress_lz4_bound.argtypes = [size, size, size]
        lib.bshuf_default_block_size.restype = size
        lib.bshuf_default_block_size.argtypes = [size]
    except (ImportError, OSError, AttributeError):
        return None
    return lib


def _filter_chunk(array):
    """The chunk HDF5's bitshuffle-LZ4 filter stores for ``array`` (one chunk)."""
    import io

    import h5py
    import hdf5plugin
    with h5py.File(io.BytesIO(), "w") as h5:
        ds = h5.create_dataset("x", data=array, chunks=array.shape,
                               **hdf5plugin.Bitshuffle(cname="lz4"))
        return bytes(ds.id.read_direct_chunk((0,) * array.ndim)[1])


def _agrees(lib):
    """Whether the library's functions make the filter's chunks (checked once, on an
    array of several blocks and a remainder, compressed in parts)."""
    rng = np.random.default_rng(1)
    sample = (rng.poisson(4.0, 3 * 4096 + 13) + 40).astype(np.uint16)
    try:
        return all(_compress(lib, sample, threads) == _filter_chunk(sample)
                   for threads in (1, 2))
    except (ImportError, OSError, RuntimeError, ValueError):
        return False


def _library():
    with _lock:     # re-entrant: the check uses the pool
        if not _state["loaded"]:
            lib = _load()
            _state["lib"] = lib if lib is not None and _agrees(lib) else None
            _state["loaded"] = True
        return _state["lib"]


def available():
    """Whether chunks can be compressed here (``hdf5plugin``'s bitshuffle functions
    are found and make the filter's bytes)."""
    return _library() is not None


def _threads():
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(MAX_THREADS, cpus))


def _pool():
    """This process's compression threads (made again in a forked child)."""
    with _lock:
        if _state["pool"] is None or _state["pid"] != os.getpid():
            _state["pool"] = ThreadPoolExecutor(_threads(), "nbnumba-bitshuffle")
            _state["pid"] = os.getpid()
        return _state["pool"]


class Pending:
    """A chunk being compressed on the pool's threads; :meth:`result` waits for it."""

    def __init__(self, header, out, offsets, parts):
        self._header, self._out, self._offsets, self._parts = header, out, offsets, parts

    def result(self):
        """The chunk (bytes); RuntimeError if the compression failed."""
        sizes = [part.result() for part in self._parts]
        if min(sizes) < 0:
            raise RuntimeError("bitshuffle-LZ4 compression failed (error %d)" % min(sizes))
        view = memoryview(self._out)
        return b"".join([self._header] + [view[o:o + n]
                                          for o, n in zip(self._offsets, sizes)])


def submit_lz4(array, threads=None):
    """Start compressing ``array`` as HDF5's bitshuffle filter with LZ4 and the default
    block size does, on the pool's threads; returns a :class:`Pending` (the caller works
    on meanwhile). threads: how many parts are compressed at once (default: the usable
    CPUs, at most :data:`MAX_THREADS`). Raises RuntimeError when :func:`available` is
    False."""
    lib = _library()
    if lib is None:
        raise RuntimeError("hdf5plugin's bitshuffle library is not available")
    return _submit(lib, array, threads)


def _compress(lib, array, threads):
    return _submit(lib, array, threads).result()


def _submit(lib, array, threads):
    data = np.ascontiguousarray(array)
    size, elem = data.size, data.dtype.itemsize
    block = lib.bshuf_default_block_size(elem)
    parts = max(1, min(threads or _threads(), size // block))
    # part boundaries on whole blocks; the last part takes the rest (and any remainder)
    per = (size // block) // parts * block
    starts = [i * per for i in range(parts)] + [size]
    bounds = [lib.bshuf_compress_lz4_bound(starts[i + 1] - starts[i], elem, 0)
              for i in range(parts)]
    out = np.empty(sum(bounds), np.uint8)
    offsets = [sum(bounds[:i]) for i in range(parts)]
    started = threading.Semaphore(0)

    def part(i):
        # the arrays are referenced here, so they outlive every running part (also
        # when the caller is interrupted while waiting)
        src, dst = data.ctypes.data + starts[i] * elem, out.ctypes.data + offsets[i]
        started.release()
        return lib.bshuf_compress_lz4(src, dst, starts[i + 1] - starts[i], elem, 0)

    pool = _pool()
    futures = [pool.submit(part, i) for i in range(parts)]
    # wait (the GIL released) until every part runs: a caller that then keeps the GIL
    # (h5py) would otherwise hold the threads back for up to sys.getswitchinterval()
    for _ in range(parts):
        started.acquire()
    header = (size * elem).to_bytes(8, "big") + (block * elem).to_bytes(4, "big")
    return Pending(header, out, offsets, futures)


def compress_lz4(array, threads=None):
    """The bitshuffle-LZ4 chunk (bytes) of ``array`` (see :func:`submit_lz4`)."""
    return submit_lz4(array, threads).result()
