"""The experiment files beside the images: ``-expt``/``-xds_inp`` (``nbnumba``) and
``--expt``/``--xds-inp`` (``nbnumba-series``).

Both commands build the files' content from the prepared set-ups before rendering (so
a name DIALS cannot read, a curved detector or a still for XDS is an error before any
work) and stage them with the images, through the same atomic writing. The files name
the images ``-expt_images``/``--expt-images`` chooses: the int images (default), the
noise images, the frames of the NXmx file (``-nexus``: one file, its frames numbered
from 1, counts without an offset) or files the user names.
"""
import os

from nbnumba import engine
from nbnumba.constants import RTD
from nbnumba.experiment import (ExperimentError, NumberedName, check_describable, describe,
                                image_number, orientation_offset, series_template)
from nbnumba.io.atomic import OutputError, check_writable
from nbnumba.io import nexus
from nbnumba.io.expt import expt_bytes
from nbnumba.io.xds_inp import xds_inp_bytes

from .parse import CliError


def _files(images, expt, xds_inp, expt_option, xds_option, container=None):
    files = []
    try:
        if expt:
            files.append((expt, expt_bytes(images, expt, container), "DIALS experiment list"))
        if xds_inp:
            files.append((xds_inp, xds_inp_bytes(images, xds_inp, xds_option), "XDS input"))
    except ExperimentError as exc:
        raise CliError(str(exc)) from None
    except UnicodeEncodeError as exc:  # a name that is not UTF-8 text (or not ASCII for XDS)
        option = expt_option if expt and not files else xds_option
        what = "ASCII" if exc.encoding == "ascii" else "UTF-8"
        raise CliError(f"{option}: a file name in it is not {what} text, which the file "
                       "cannot hold; rename the images (or the file)") from None
    return files


def _container(which, nexus_path, xds_inp, option, xds_option):
    """The NXmx file the experiment files describe (``which`` = nexus), else None."""
    if which != "nexus":
        return None
    if not nexus_path:
        raise CliError(f"{option} nexus: no NXmx file is written (give -nexus FILE, "
                       "--nexus FILE for a series)")
    if xds_inp:
        raise CliError(f"{option} nexus: {xds_option} describes SMV images (XDS reads "
                       "NXmx through a plugin of its own); write -expt alone for the NXmx "
                       "file, or describe the SMV images")
    return nexus_path


def check_paths(*paths, create_directories=False):
    """check_writable for each path given (None: not asked for); with
    ``create_directories`` missing directories are made first (as the series does for
    its frames)."""
    for path in paths:
        if path:
            if create_directories:
                _make_directory(path)
            check_writable(path)


def _make_directory(path):
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: cannot create {directory}: "
                          f"{exc.strerror or exc}") from None


def _panels_described(setup, which, xds_inp, nexus_path, options):
    """The images the experiment files describe for a detector of several panels: the
    frames of the NXmx file (SMV images hold one panel), which must be written; XDS.INP
    (one panel) is refused. ``which`` unchanged for one panel."""
    if setup.panels is None or len(setup.panels) < 2:
        return which
    n = len(setup.panels)
    expt_option, xds_option, nexus_option = options
    if xds_inp:
        raise CliError(f"{xds_option}: XDS.INP describes a detector of one panel; this one "
                       f"has {n} ({expt_option} with {nexus_option} describes them all)")
    if not nexus_path:
        raise CliError(f"{expt_option}: a detector of {n} panels is described with its NXmx "
                       "frames, which DIALS reads panel by panel (SMV images hold one "
                       f"panel): add {nexus_option} FILE.nxs")
    return "nexus"


def image_files(setup, out):
    """[(path, bytes, what)] of the files ``-expt``/``-xds_inp`` ask for (maybe none),
    describing the image ``-expt_images`` names (the ``-intfile`` image by default) of a
    prepared set-up."""
    if not (out.expt or out.xds_inp):
        return []
    option = "-expt" if out.expt else "-xds_inp"
    which = _panels_described(setup, out.expt_images, out.xds_inp, out.nexus,
                              ("-expt", "-xds_inp", "-nexus"))
    container = _container(which, out.nexus, out.xds_inp, "-expt_images", "-xds_inp")
    adc = out.adc
    try:
        check_describable(setup, option)
        if container is not None:   # frame 1 of the NXmx file: counts without an offset
            name, adc = NumberedName("", "1", ""), 0.0
        elif which == "noise":
            if not out.write_noise:
                raise CliError("-expt_images noise: no noise image is written (-nonoise)")
            name = image_number(out.noisefile, "-expt_images noise")
        else:
            name = image_number(out.intfile if which == "int" else which,
                                option if which == "int" else "-expt_images")
    except ExperimentError as exc:
        raise CliError(str(exc)) from None
    return _files([describe(setup, name, adc)], out.expt, out.xds_inp, "-expt", "-xds_inp",
                  container)


def _series_names(which, template, frames, option):
    """The names of a series' frames that the experiment files describe: the ``.img``
    frames (``int``), the ``_noise.img`` frames (``noise``) or a template of the user's
    (one frame-number field, the number at the end of the name)."""
    if which in ("int", "noise"):
        if which == "noise" and option.endswith("expt"):
            raise ExperimentError(
                f"{option}: DIALS reads the number of an SMV image from the end of its "
                "name, and the series' noise frames end in _noise.img; describe their "
                "counts in the NXmx file instead (--nexus FILE --expt-images nexus)")
        series_template(template, frames, option)
        names = [image_number(template.format(i) + ".img", option) for i in range(frames)]
        if which == "noise":   # the XDS template sim_?????_noise.img
            names = [NumberedName(n.prefix, n.digits, "_noise.img") for n in names]
        return names
    try:
        first, second = which.format(0), which.format(1)
    except (IndexError, KeyError, ValueError):
        first = second = None
    if first is None or first == second:
        raise ExperimentError(f"{option} {which!r}: a template needs one frame-number "
                              "field, e.g. noisy/sim_{:05d}.img")
    names = []
    for i in range(frames):
        name = image_number(which.format(i), option + " " + which)
        if name.number != i or (i and name.prefix != names[0].prefix):
            raise ExperimentError(f"{option} {which!r}: the names must end in the frame "
                                  "number (e.g. noisy/sim_{:05d}.img)")
        names.append(name)
    return names


def series_files(frameset, template, adc, expt, xds_inp, which="int", nexus_path=None):
    """[(path, bytes, what)] of ``--expt``/``--xds-inp`` for a series' frames: the
    ``.img`` frames, or those ``--expt-images`` names (``which``)."""
    if not (expt or xds_inp):
        return []
    option = "--expt" if expt else "--xds-inp"
    which = _panels_described(engine.prepare(frameset.config(0)), which, xds_inp, nexus_path,
                              ("--expt", "--xds-inp", "--nexus"))
    container = _container(which, nexus_path, xds_inp, "--expt-images", "--xds-inp")
    images = []
    try:
        if container is not None:   # frames 1 ... n of the NXmx file, counts without offset
            names, adc = [NumberedName("", str(i + 1), "") for i in range(len(frameset))], 0.0
        else:
            names = _series_names(which, template, len(frameset), option)
        for i, name in enumerate(names):
            setup = engine.prepare(frameset.config(i))
            check_describable(setup, option)
            images.append(describe(setup, name, adc))
    except ExperimentError as exc:
        raise CliError(str(exc)) from None
    return _files(images, expt, xds_inp, "--expt", "--xds-inp", container)


def sampling_note(setup):
    """A one-line note when the image's effective orientation is offset from the
    oscillation the experiment files state (the C's phi sampling), else None."""
    offset = orientation_offset(setup)
    if abs(offset) <= 1e-12:
        return None
    sampling = "the step midpoints" if setup.config.crystal.phi_midpoints else "phi + k x step"
    return (f"note: {setup.phi_steps} phi steps of {setup.phi_step * RTD:g} deg sampled at "
            f"{sampling}: the effective crystal orientation is rotated {offset * RTD:g} deg "
            "about the spindle from the one the experiment files state; -phi_midpoints "
            "samples the midpoints of the steps (offset 0)")


def nexus_frames(setups, path, option):
    """The frames' :class:`~nbnumba.io.nexus.FrameDescription` for an NXmx file at
    ``path`` (None: not asked for): h5py, the path and the geometry are checked here,
    before any rendering."""
    if not path:
        return None
    nexus.require_h5py(option)
    check_paths(path)
    return nexus.describe_frames(setups, option)


def series_nexus(frameset, path):
    """The frames' records of ``--nexus`` (None: not asked for), checked before
    rendering."""
    if not path:
        return None
    nexus.require_h5py("--nexus")
    _make_directory(path)
    return nexus_frames([engine.prepare(frameset.config(i)) for i in range(len(frameset))],
                        path, "--nexus")


def series_master(frames_of, frameset, template, path, started):
    """The ``--nexus`` master file's content: the frames' ``.h5`` files joined
    (frames_of: what :func:`series_nexus` returned)."""
    from nbnumba.series import frame_paths
    sources = [frame_paths(template, i, ["nexus"])[0][1] for i in range(len(frameset))]
    dtype = "float32" if frameset.outputs.nexus == "float" else "uint16"
    return nexus.master_bytes(frames_of.records,
                              sources=nexus.relative_sources(sources, path),
                              dtype=dtype, start_time=started, spectrum=frames_of.spectrum,
                              option="--nexus", pixel_mask=frames_of.pixel_mask)
