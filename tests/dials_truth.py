"""Compare an experiment list DIALS processed with nbnumba's truth (run with DIALS' Python).

    $DIALS_PY tests/dials_truth.py TRUTH.expt FOUND.expt

prints one JSON object: the rotation from the true to the found crystal (degrees, as a
rotation vector resolved about the spindle, the beam and the axis perpendicular to both),
the cell of each (the found one in the true basis: DIALS may pick another basis of the
same lattice), the beam centre of each on the first panel (pixels) and the distance (mm),
and whether the scan equals the one dxtbx reads from the images. Used by
tests/test_dials.py; the user guide's comparison does the same in a few lines.
"""
import json
import math
import sys

import dxtbx.model  # noqa: F401  (before anything imports scipy: DIALS' build needs it)
import numpy as np
from dxtbx.model.experiment_list import ExperimentList


def _axes(crystal):
    """Real-space a, b, c (rows, Angstrom, DIALS lab frame)."""
    return np.array([list(v) for v in crystal.get_real_space_vectors()])


def _cell(axes):
    a, b, c = axes
    lengths = [float(np.linalg.norm(v)) for v in (a, b, c)]

    def angle(u, v):
        return math.degrees(math.acos(float(np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v))))

    return lengths + [angle(b, c), angle(c, a), angle(a, b)]


def _rotation_vector(r):
    """The rotation vector (radians) of a proper rotation matrix."""
    w = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]]) / 2.0
    s = float(np.linalg.norm(w))
    angle = math.atan2(s, (float(np.trace(r)) - 1.0) / 2.0)
    return w * (angle / s) if s > 0.0 else np.zeros(3)


def compare(truth, found):
    true_axes, found_axes = _axes(truth.crystal), _axes(found.crystal)
    basis = np.rint(found_axes @ np.linalg.inv(true_axes))   # found = basis @ true
    assert abs(abs(np.linalg.det(basis)) - 1.0) < 1e-9, basis
    found_axes = np.linalg.inv(basis) @ found_axes             # in the true basis
    # the rotation r with found ~ true @ r.T, without the (tiny) strain: polar part
    u, _, vt = np.linalg.svd((np.linalg.inv(true_axes) @ found_axes).T)
    r = u @ vt
    rotation = np.degrees(_rotation_vector(r))
    beam = -np.array(truth.beam.get_s0())
    beam /= np.linalg.norm(beam)
    if truth.goniometer is not None:
        spindle = np.array(truth.goniometer.get_rotation_axis())
    else:
        spindle = np.array([1.0, 0.0, 0.0])
    spindle -= np.dot(spindle, beam) * beam
    spindle /= np.linalg.norm(spindle)
    third = np.cross(beam, spindle)
    result = {
        "rotation_deg": [float(x) for x in rotation],
        "about_spindle_deg": float(np.dot(rotation, spindle)),
        "about_beam_deg": float(np.dot(rotation, beam)),
        "about_third_deg": float(np.dot(rotation, third)),
        "angle_deg": float(np.linalg.norm(rotation)),
        "basis": basis.astype(int).tolist(),
        "true_cell": _cell(true_axes),
        "found_cell": _cell(found_axes),
    }
    for name, expt in (("true", truth), ("found", found)):
        panel = expt.detector[0]
        result[name + "_beam_centre_px"] = list(panel.get_beam_centre_px(expt.beam.get_s0()))
        result[name + "_distance_mm"] = panel.get_directed_distance()
    return result


def main(truth_path, found_path):
    truth = ExperimentList.from_file(truth_path, check_format=False)[0]
    found = ExperimentList.from_file(found_path, check_format=False)[0]
    result = compare(truth, found)
    if truth.scan is not None:
        with_images = ExperimentList.from_file(truth_path, check_format=True)[0]
        result["scan_matches_images"] = bool(with_images.scan == with_images.imageset.get_scan())
        result["batch_offsets"] = [with_images.scan.get_batch_offset(),
                                   with_images.imageset.get_scan().get_batch_offset()]
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(*sys.argv[1:3])
