"""Memory checks before large allocations: estimate, compare with what is free, refuse.

Allocations that grow with the input (the structure-factor grid, images, the crystal
orientation and source tables) are estimated before they are made. If an estimate
exceeds the memory available, the run stops with one line giving the size and what to
change, instead of swapping the machine to a halt or being killed.

Available memory is ``MemAvailable`` of ``/proc/meminfo`` (or the free physical pages
where that file does not exist), lowered to the room left under a cgroup (container)
memory limit when there is one.
"""
import os


def _meminfo_available():
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def _read_number(path):
    try:
        with open(path) as handle:
            text = handle.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _cgroup_room():
    """Bytes left under the cgroup memory limit (v2, then v1); None without a limit."""
    for limit_path, usage_path in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        limit = _read_number(limit_path)
        usage = _read_number(usage_path)
        if limit is not None and usage is not None and limit < 1 << 60:
            return max(limit - usage, 0)
    return None


def available_bytes():
    """Memory this process can still allocate without swapping (bytes), or None when
    it cannot be told."""
    values = [v for v in (_meminfo_available(), _cgroup_room()) if v is not None]
    return min(values) if values else None


def size_text(nbytes):
    """``nbytes`` as a short human-readable size (``2.1 GB``; powers of 1000)."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= scale:
            return "%.3g %s" % (nbytes / scale, unit)
    return "%d bytes" % nbytes


def require(nbytes, what, advice, error=MemoryError):
    """Raise ``error`` (one line) if ``nbytes`` exceed the memory available.

    what: what needs the memory ("the structure-factor grid (641 x 641 x 641)");
    advice: what the user can change ("use a smaller range of Miller indices").
    """
    available = available_bytes()
    if available is not None and nbytes > available:
        raise error(f"{what} needs {size_text(nbytes)} of memory, more than the "
                    f"{size_text(available)} available; {advice}")
