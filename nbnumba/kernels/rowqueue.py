"""A queue of rows shared by the threads of one CPU kernel call, and its control array.

One ``int64`` array of :data:`SLOTS` entries is shared by the kernel's threads and the
calling Python thread:

* ``control[NEXT]``: the next row to hand out; each kernel thread takes rows one at a
  time with an atomic fetch-and-add (:func:`take_row`), so a thread that the operating
  system deschedules simply renders fewer rows instead of stalling the others;
* ``control[DONE]``: rows finished (atomically incremented after each row), read by the
  calling thread for progress;
* ``control[STOP]``: set to 1 by the calling thread to stop the kernel; each kernel
  thread reads it (an atomic load, never hoisted out of the loop) before taking a row,
  so a kernel stops within one row.

The atomics are LLVM's ``atomicrmw``/``load atomic`` on the array's memory (plain
array operations when numba's JIT is disabled, ``NUMBA_DISABLE_JIT=1``, where the
kernels run as Python in one thread).
"""
import numpy as np
from numba import config
from numba.core import cgutils, types
from numba.extending import intrinsic

from .. import _jit

NEXT, DONE, STOP = 0, 1, 2
#: entries of a control array
SLOTS = 3


def control_array():
    """A zeroed control array (no row handed out, none done, not stopped)."""
    return np.zeros(SLOTS, dtype=np.int64)


def _element_pointer(context, builder, array_type, array, index):
    ary = context.make_array(array_type)(context, builder, array)
    return cgutils.get_item_pointer(context, builder, array_type, ary, [index])


@intrinsic
def _fetch_add(typingctx, array, index, value):
    """``old = array[index]; array[index] += value; return old``, atomically (int64)."""
    if not (isinstance(array, types.Array) and array.dtype == types.int64):
        return None
    sig = types.int64(array, types.intp, types.int64)

    def codegen(context, builder, signature, args):
        ptr = _element_pointer(context, builder, signature.args[0], args[0], args[1])
        return builder.atomic_rmw("add", ptr, args[2], "seq_cst")
    return sig, codegen


@intrinsic
def _load(typingctx, array, index):
    """``array[index]`` as an atomic load (int64): re-read on every call."""
    if not (isinstance(array, types.Array) and array.dtype == types.int64):
        return None
    sig = types.int64(array, types.intp)

    def codegen(context, builder, signature, args):
        ptr = _element_pointer(context, builder, signature.args[0], args[0], args[1])
        return builder.load_atomic(ptr, "acquire", 8)
    return sig, codegen


if config.DISABLE_JIT:  # the kernels are plain Python: plain array operations suffice
    def _fetch_add(array, index, value):  # noqa: F811
        old = int(array[index])
        array[index] += value
        return old

    def _load(array, index):  # noqa: F811
        return int(array[index])


@_jit.inline
def take_row(control, n_rows):
    """Index of the next row for this thread, or -1 when none is left or a stop was asked."""
    if _load(control, STOP) != 0:
        return -1
    r = _fetch_add(control, NEXT, 1)
    return r if r < n_rows else -1


@_jit.inline
def row_done(control):
    """Count one more finished row."""
    _fetch_add(control, DONE, 1)
