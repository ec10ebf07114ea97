"""Where the resident renderer lives, and which installation it serves.

Standard library only: the client imports it before it knows whether it renders
in-process.

* The renderer's directory is ``$XDG_RUNTIME_DIR/nbnumba`` when ``XDG_RUNTIME_DIR`` is an
  absolute path, else ``/tmp/nbnumba-<uid>``. It is created with mode 0700 and checked
  before every use (:func:`private_directory`): a directory, not a symbolic link, owned
  by this user, with no permission for group or others.
* Its socket, lock and log are named after :func:`installation_key`, a digest of the
  real paths of the ``nbnumba_cli`` and ``nbnumba`` packages, ``sys.executable`` and the
  Python version, so that a renderer of another installation or Python is never asked.
* :func:`source_fingerprint` (paths, sizes and modification times of the packages'
  ``.py`` files and of the numerical libraries') tells the renderer that the files it
  imported were changed since (an upgrade, an edit of an editable install).
"""
import binascii
import os
import stat
import sys

#: longest socket path (bytes) that ``sockaddr_un`` holds on Linux, with its final NUL
SOCKET_PATH_MAX = 107


def base_directory():
    """The renderer's directory for this user (not created, not checked)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.isabs(runtime):
        return os.path.join(runtime, "nbnumba")
    return "/tmp/nbnumba-%d" % os.geteuid()


def check_private(path):
    """None when ``path`` is a directory of this user that no one else may enter, else
    one line saying why it is not (``path`` missing included)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "%s does not exist" % path
    except OSError as exc:
        return "cannot inspect %s (%s)" % (path, exc.strerror)
    if stat.S_ISLNK(st.st_mode):
        return "%s is a symbolic link" % path
    if not stat.S_ISDIR(st.st_mode):
        return "%s is not a directory" % path
    if st.st_uid != os.geteuid():
        return "%s belongs to another user (uid %d)" % (path, st.st_uid)
    if st.st_mode & 0o077:
        return "%s may be used by other users (mode %04o; 0700 expected)" % (
            path, stat.S_IMODE(st.st_mode))
    return None


def private_directory(create=False):
    """(path, problem): the renderer's directory and None when it is usable, else one
    line saying why not. ``create``: make it (mode 0700) when it is missing."""
    path = base_directory()
    if create:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            return path, "cannot create %s (%s)" % (path, exc.strerror)
    return path, check_private(path)


def package_directories():
    """Real paths of the ``nbnumba_cli`` and ``nbnumba`` packages of this installation
    (found without importing ``nbnumba``; "" when it cannot be found)."""
    cli = os.path.dirname(os.path.realpath(__file__))
    library = ""
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is None:
            continue
        try:
            spec = find_spec("nbnumba", None)
        except Exception:  # a third-party finder that fails: ask the next one
            continue
        if spec is not None and spec.submodule_search_locations:
            library = os.path.realpath(list(spec.submodule_search_locations)[0])
            break
    return cli, library


def installation():
    """What identifies this installation: (package directories, ``sys.executable``,
    ``sys.version``)."""
    return package_directories() + (sys.executable, sys.version)


def installation_key(identity=None):
    """16 hexadecimal digits naming this installation's renderer (``identity``: an
    :func:`installation` tuple; default this process's)."""
    text = "\0".join(installation() if identity is None else identity)
    data = text.encode("utf-8", "surrogateescape")
    return "%08x%08x" % (binascii.crc32(data), binascii.crc32(data[::-1], 0x5BD1E995))


def paths(directory, key=None):
    """{"socket", "lock", "log"}: the renderer's file paths in ``directory``."""
    stem = os.path.join(directory, "renderer-" + (key or installation_key()))
    return {"socket": stem + ".sock", "lock": stem + ".lock", "log": stem + ".log"}


def source_fingerprint(directories, modules=()):
    """A tuple that changes when a ``.py`` file under ``directories`` is added, removed
    or modified, or when one of ``modules``' files (paths) is replaced."""
    found = []
    for top in directories:
        if not top:
            continue
        for folder, subfolders, names in os.walk(top):
            subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
            for name in sorted(names):
                if name.endswith(".py"):
                    found.append(os.path.join(folder, name))
    found.extend(modules)
    stamps = []
    for path in found:
        try:
            st = os.stat(path)
            stamps.append((path, st.st_size, st.st_mtime_ns, st.st_ino))
        except OSError:
            stamps.append((path, -1, -1, -1))
    return tuple(stamps)
