"""``XDS.INP`` for a simulated rotation sweep: XDS' input, with the true cell.

XDS' conventions (its documentation, "Coordinate systems" and "Input parameters"):

* any right-handed laboratory frame; here the beam travels along +z and the rotation
  axis lies along +x (:func:`nbnumba.experiment.lab_frame`);
* a detector point with pixel coordinates (X, Y) lies at
  ``DETECTOR_DISTANCE * N + QX*(X - ORGX) * XAXIS + QY*(Y - ORGY) * YAXIS`` (mm) with
  N = XAXIS x YAXIS; the first pixel's centre has coordinates (1, 1), so nbnumba's pixel
  (f, s) (0-based, centre at (f + 1/2, s + 1/2) pixels from the corner ``pix0``) is
  XDS pixel (f + 1, s + 1). ORGX, ORGY are the foot of the normal from the crystal, and
  DETECTOR_DISTANCE is signed (negative when N points towards the crystal, as for
  nbnumba's ADXV convention);
* the crystal turns right-handedly about ROTATION_AXIS by OSCILLATION_RANGE (> 0) per
  frame; frame STARTING_FRAME starts at STARTING_ANGLE. XDS numbers frames from 1, so a
  series whose first file is number 0 is described from its second frame on.

The images are read as ``DETECTOR=ADSC`` (SMV). The true cell goes in
``UNIT_CELL_CONSTANTS`` with ``SPACE_GROUP_NUMBER=1``; the true orientation at phi = 0
is written as comments (``UNIT_CELL_A-AXIS`` ...), so that XDS still indexes on its own.
The oscillation is the one given; with the C's phi sampling the images show the crystal
rotated by -osc/(2 phisteps) about the spindle
(:func:`nbnumba.experiment.orientation_offset`), with ``-phi_midpoints`` not at all.
Numbers carry 12 significant digits (far below 1e-9 m on the detector).
"""
import math
import os

from ..experiment import (MAX_TRUSTED_COUNT, ExperimentError, degrees, lab_frame, sweeps,
                          to_frame)
from .. import vec


def _num(x):
    text = "%.12g" % x
    return "0" if text == "-0" else text


def _vector(v):
    return " ".join(_num(x) for x in v)


def check_sweep(images, option):
    """Raise :class:`ExperimentError` unless ``images`` form one rotation sweep that XDS
    can read (numbers of one width, not all frame 0)."""
    found = sweeps(images)
    if len(found) != 1 or not images[0].is_rotation:
        raise ExperimentError(f"{option}: XDS processes one rotation sweep: the images need "
                              "an oscillation (-osc or --frame-osc), one crystal "
                              "orientation and consecutive numbers")
    widths = {len(im.name.digits) for im in images}
    if len(widths) != 1:
        raise ExperimentError(f"{option}: XDS needs image numbers of one width: write the "
                              "numbers zero-padded (e.g. sim_{:05d})")
    if images[-1].name.number < 1:
        raise ExperimentError(f"{option}: XDS numbers frames from 1; image number 0 alone "
                              "cannot be processed (name it e.g. sim_00001.img)")
    return found[0]


def xds_inp_text(images, path, option="-xds_inp"):
    """The text of ``XDS.INP`` (to be written at ``path``) for a rotation sweep.

    images: the sweep's :class:`~nbnumba.experiment.SimulatedImage` records in frame
    order. The image template is relative to the directory of ``path`` (XDS runs there).
    """
    sweep = check_sweep(images, option)
    image = sweep.first
    axis, start, width = image.spindle, image.phi0, image.osc
    rows = lab_frame(image.beam, axis, +1)
    first, last = sweep.image_range
    if first == 0:    # XDS cannot read frame 0: start at frame 1, 'width' later
        first, start = 1, start + width
    px_mm = image.pixel_size * 1000.0
    x_axis = to_frame(rows, image.fast)
    y_axis = to_frame(rows, image.slow)
    normal = vec.cross(x_axis, y_axis)
    pix0 = [1000.0 * x for x in to_frame(rows, image.pix0)]
    distance = vec.dot(pix0, normal)
    orgx = -vec.dot(pix0, x_axis) / px_mm + 0.5
    orgy = -vec.dot(pix0, y_axis) / px_mm + 0.5
    normal_pol, fraction = image.polarization()
    template = os.path.relpath(os.path.abspath(image.name.template("?")),
                               os.path.dirname(os.path.abspath(path)))
    cell = image.cell
    lines = [
        "! XDS.INP written by nbnumba: the geometry of the simulated images, exactly.",
        "! Laboratory frame: the beam travels along +z, the rotation axis lies along +x.",
        "JOB= XYCORR INIT COLSPOT IDXREF DEFPIX INTEGRATE CORRECT",
        f"NAME_TEMPLATE_OF_DATA_FRAMES= {template}",
        f"DATA_RANGE= {first} {last}",
        f"SPOT_RANGE= {first} {last}",
        f"DETECTOR= ADSC  MINIMUM_VALID_PIXEL_VALUE= 0  OVERLOAD= {MAX_TRUSTED_COUNT}",
        f"NX= {image.fpixels}  NY= {image.spixels}  QX= {_num(px_mm)}  QY= {_num(px_mm)}",
        f"DIRECTION_OF_DETECTOR_X-AXIS= {_vector(x_axis)}",
        f"DIRECTION_OF_DETECTOR_Y-AXIS= {_vector(y_axis)}",
        f"ORGX= {_num(orgx)}  ORGY= {_num(orgy)}",
        f"DETECTOR_DISTANCE= {_num(distance)}",
    ]
    if image.thickness > 0.0 and image.mu > 0.0:
        lines += [f"SENSOR_THICKNESS= {_num(image.thickness * 1000.0)}",
                  f"SILICON= {_num(image.mu / 1000.0)}   ! sensor attenuation, 1/mm"]
    lines += [
        "TRUSTED_REGION= 0.0 1.42",
        "AIR= 0.0",
        f"ROTATION_AXIS= {_vector(to_frame(rows, axis))}",
        f"STARTING_FRAME= {first}  STARTING_ANGLE= {_num(degrees(start))}",
        f"OSCILLATION_RANGE= {_num(degrees(width))}",
        f"X-RAY_WAVELENGTH= {_num(image.wavelength * 1e10)}",
        f"INCIDENT_BEAM_DIRECTION= {_vector(to_frame(rows, image.beam))}",
        f"FRACTION_OF_POLARIZATION= {_num(fraction)}",
        f"POLARIZATION_PLANE_NORMAL= {_vector(to_frame(rows, normal_pol))}",
    ]
    if image.no_polarization:
        lines.append("! (the images were rendered without a polarization factor: -nopolar)")
    lines += [
        "! The truth: the simulated cell and, as comments, its axes (Angstrom) at phi = 0",
        "SPACE_GROUP_NUMBER= 1",
        "UNIT_CELL_CONSTANTS= " + " ".join(_num(x) for x in cell[:3])
        + " " + " ".join(_num(math.degrees(x)) for x in cell[3:]),
    ]
    for label, v in zip("ABC", (image.a, image.b, image.c)):
        lines.append(f"!UNIT_CELL_{label}-AXIS= {_vector([1e10 * x for x in to_frame(rows, v)])}")
    return "\n".join(lines) + "\n"


def xds_inp_bytes(images, path, option="-xds_inp"):
    """The file's content (ASCII)."""
    return xds_inp_text(images, path, option).encode("ascii")
