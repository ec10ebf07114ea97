"""The file names of a written series: every frame's files distinct, and distinct from
the other files the run writes (its record, a manifest, an experiment list ...), and
every frame's files replaceable.

Checked for every frame before anything is rendered: a template that gives two frames
one name (``'{!s:.1}'``, ``'f_{:.0e}'`` after frame 9) or a name no file can have (a NUL
character from ``'{:c}'``) would otherwise cost frames or fail part-way, and a frame
file that cannot be replaced (``chattr +i``, mode 0444, a directory in its place) would
fail its frame after rendering it (:func:`check_targets`).
"""
import os

from ..io.atomic import OutputError, check_renamable
from . import record
from .frames import EXTENSIONS, SeriesError
from .tasks import STAGE_PREFIX, check_template, frame_paths

#: the start of the names of the run's own files (record, journal, lock, staging
#: directories and the frame files staged in them, spooled inputs, temporary files): no
#: output may be given such a name, nor lie in a directory named like a staging directory
#: (a later run in the directory above removes it as one a killed run left)
RESERVED_PREFIX = ".nbnumba-"


def _frame_name(template, index):
    try:
        name = template.format(index)
    except (IndexError, KeyError, ValueError, OverflowError, TypeError) as exc:
        raise SeriesError(f"template {template!r} cannot name frame {index}: {exc}") from None
    if "\0" in name:
        raise SeriesError(f"template {template!r} gives frame {index} a name with a NUL "
                          "character, which no file name may hold")
    return name


def check_names(template, frames, kinds, others=None):
    """Raise :class:`SeriesError` unless the files of frames ``0 .. frames - 1`` (each
    ``kinds``' extension appended to ``template.format(i)``), the run record, the lock
    and every path of ``others`` ({what: path}, e.g. ``{"--manifest": "s.json"}``; None
    values are skipped) are all different files, and that neither the frames nor
    ``others`` have a name the run keeps for its own files (:data:`RESERVED_PREFIX`: its
    journal, staging directories, staged frames ...) or lie in a directory named like a
    staging directory (``.nbnumba-stage-...``).

    Names are compared after resolving the directories' symbolic links (``x/../y`` and
    ``./y`` are one file); an existing ``others`` file is also compared by inode (a hard
    link, or a symbolic link to a frame). No file is created or opened.
    """
    check_template(template)
    _check_not_reserved("the template's file name", template.format(0), template)
    real_dirs = {}   # directory as written -> resolved

    def key(path):
        directory, name = os.path.split(path)
        if directory not in real_dirs:
            real_dirs[directory] = os.path.realpath(directory or ".")
        return os.path.join(real_dirs[directory], name)

    owner = {}   # resolved path -> what writes it

    def claim(path, what):
        k = key(path)
        if k in owner:
            raise SeriesError(f"{what} and {owner[k]} are the same file ({path}): give "
                              "each its own name")
        owner[k] = what

    extensions = [EXTENSIONS[k] for k in kinds]
    for i in range(int(frames)):
        directory, stem = os.path.split(_frame_name(template, i))
        if directory not in real_dirs:
            real_dirs[directory] = os.path.realpath(directory or ".")
        stem = os.path.join(real_dirs[directory], stem)
        for extension in extensions:
            k = stem + extension
            if k in owner:
                raise SeriesError(f"template {template!r} gives {owner[k]} and frame {i} the "
                                  f"same file {os.path.join(directory, os.path.basename(k))}:"
                                  " use e.g. 'frame_{:05d}'")
            owner[k] = "frame %d" % i
    claim(record.record_path(template), "the run record")
    claim(record.journal_path(record.record_path(template)), "the run record's journal")
    claim(os.path.join(record.run_directory(template), record.LOCK_NAME), "the series lock")
    for written, resolved in real_dirs.items():
        for name in (written, resolved):
            _check_not_staging("the template", name, template)
    directories = set()   # the frames' directories and those above them
    for d in set(real_dirs.values()):
        while d not in directories:
            directories.add(d)
            d = os.path.dirname(d)
    inodes = {}
    for what, path in (others or {}).items():
        if not path:
            continue
        real = os.path.realpath(path)
        for name in (path, real):   # given so, or through a symbolic link
            _check_not_reserved(what, name, path)
            _check_not_staging(what, os.path.dirname(name), path)
        k = key(real)
        if k in directories:
            raise SeriesError(f"{what} {path} is a directory (the frames' files go in it): "
                              "give a file name")
        if k in owner:
            raise SeriesError(f"{what} {path} is also {_describe(owner[k], k)}: give "
                              "it another name")
        owner[k] = f"{what} {path}"
        inodes[what] = path
    _check_links(template, frames, kinds, inodes)


def _check_not_reserved(what, path, given):
    """:class:`SeriesError` if the file name of ``path`` is one the run keeps for its own
    files (``.nbnumba-...``)."""
    if os.path.basename(path).startswith(RESERVED_PREFIX):
        raise SeriesError(f"{what} {given}: names starting with {RESERVED_PREFIX} are kept "
                          "for the run's own files (record, journal, lock, staging "
                          "directories, staged frames): give another name")


def _check_not_staging(what, directory, given):
    """:class:`SeriesError` if a directory in ``directory`` (a path) is named like a run's
    staging directory (``.nbnumba-stage-...``): a run in the directory above removes
    such a directory with all it holds, as one that a killed run left."""
    for part in os.path.normpath(directory).split(os.sep):
        if part.startswith(STAGE_PREFIX):
            raise SeriesError(f"{what} {given}: {part} is named like a run's staging "
                              f"directory (names starting with {STAGE_PREFIX} are kept for "
                              "them, and a later run removes them): give another directory")


def check_targets(template, frames, kinds, unless=None):
    """Raise :class:`~nbnumba.io.atomic.OutputError` (naming the file and its frame)
    unless every file of frames ``0 .. frames - 1`` can be replaced by a rename
    (:func:`nbnumba.io.atomic.check_renamable`: not a directory, not read-only (mode
    0444), not immutable or append-only, in a directory that takes new names). Frames
    for which ``unless(index)`` is true are left out (a resumed run's recorded frames,
    checked again if they must be rendered). The directories must exist. Nothing is
    created, opened for writing or changed.
    """
    directories = {}
    for i in range(int(frames)):
        if unless is not None and unless(i):
            continue
        for _, path in frame_paths(template, i, kinds):
            try:
                check_renamable(path, directories)
            except OutputError as exc:   # say which frame it is
                raise OutputError("%s (a file of frame %d; nothing was rendered)"
                                % (exc, i)) from None


def _describe(what, resolved):
    if what.startswith("frame "):
        return f"the file of {what} ({os.path.basename(resolved)})"
    return what


def _check_links(template, frames, kinds, others):
    """Compare existing hard-linked ``others`` files with the existing frame files (and
    each other) by inode."""
    ids = {}
    for what, path in others.items():
        try:
            st = os.stat(path)
        except OSError:
            continue
        if st.st_nlink < 2:   # one name only: the resolved names were compared already
            continue
        if (st.st_dev, st.st_ino) in ids:
            raise SeriesError(f"{what} {path} and {' '.join(ids[(st.st_dev, st.st_ino)])} "
                              "are the same file: give each its own name")
        ids[(st.st_dev, st.st_ino)] = (what, path)
    if not ids:
        return
    for i in range(int(frames)):
        for _, path in frame_paths(template, i, kinds):
            try:
                st = os.stat(path)
            except OSError:
                continue
            hit = ids.get((st.st_dev, st.st_ino))
            if hit is not None:
                raise SeriesError(f"{hit[0]} {hit[1]} is the file of frame {i} ({path}) "
                                  "under another name: give it another name")
