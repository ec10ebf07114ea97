"""Detector layouts for the tests of several panels: a tilted-tile (XFEL-like) ring."""
import math

import numpy as np

from nbnumba.panels import DetectorPanels, Panel


def _rotation(axis, angle):
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]])
    return np.identity(3) + math.sin(angle) * k + (1.0 - math.cos(angle)) * (k @ k)


def tilted_tiles(n=8, fpixels=48, spixels=32, pixel=1e-4, distance=0.1, radius=0.012,
                 beam=(0.0, 0.0, -1.0)):
    """``n`` panels in a ring around the beam (DIALS' frame: the beam along -z), each
    turned in its plane by its own angle and tilted out of the detector plane by up to
    12 degrees: every panel at a different orientation. Lengths in metres."""
    beam = np.asarray(beam, float) / np.linalg.norm(beam)
    ex = np.array([1.0, 0.0, 0.0])
    ey = np.cross(-beam, ex)
    panels = []
    for k in range(n):
        azimuth = 2.0 * math.pi * k / n
        radial = math.cos(azimuth) * ex + math.sin(azimuth) * ey
        centre = distance * beam + radius * radial
        turn = _rotation(beam, azimuth + 0.3 * k)            # in-plane orientation
        tilt = _rotation(np.cross(beam, radial), math.radians(3.0 + 1.2 * k))
        fast = tilt @ turn @ ex
        slow = tilt @ turn @ np.cross(beam, ex)
        origin = centre - fast * fpixels * pixel / 2.0 - slow * spixels * pixel / 2.0
        panels.append(Panel(origin=tuple(origin), fast=tuple(fast), slow=tuple(slow),
                            pixel_size=pixel, fpixels=fpixels, spixels=spixels,
                            name="tile%d" % k))
    return DetectorPanels(panels)


def experiment_document(layout, wavelength=1.0, crystal=None, scan=None):
    """A DIALS experiment list (dict) of a detector of these panels, written here by
    hand (not by nbnumba's writer): the beam along -z, the spindle along +x, lengths in
    mm. crystal: real-space a, b, c (Angstrom) or None; scan: (first image, images,
    start, width) in degrees, or None (a still)."""
    panels = []
    for p in layout.panels:
        panels.append({
            "name": p.name, "type": "SENSOR_PAD", "origin": [x * 1e3 for x in p.origin],
            "fast_axis": list(p.fast), "slow_axis": list(p.slow),
            "pixel_size": [p.pixel_size * 1e3] * 2, "image_size": [p.fpixels, p.spixels],
            "trusted_range": [-1.0, 65535.0], "thickness": 0.45, "material": "Si",
            "mu": 3.96, "gain": 1.0, "pedestal": 0.0, "raw_image_offset": [0, 0],
            "identifier": "", "mask": [],
            "px_mm_strategy": {"type": "SimplePxMmStrategy"}})
    experiment = {"__id__": "Experiment", "beam": 0, "detector": 0}
    doc = {"__id__": "ExperimentList", "experiment": [experiment],
           "beam": [{"__id__": "monochromatic", "direction": [0.0, 0.0, 1.0],
                     "wavelength": wavelength, "divergence": 0.0, "sigma_divergence": 0.0,
                     "polarization_normal": [0.0, 1.0, 0.0],
                     "polarization_fraction": 0.999, "flux": 0.0, "transmission": 1.0}],
           "detector": [{"panels": panels}]}
    if crystal is not None:
        doc["crystal"] = [{"__id__": "crystal", "real_space_a": list(crystal[0]),
                           "real_space_b": list(crystal[1]),
                           "real_space_c": list(crystal[2]),
                           "space_group_hall_symbol": " P 1"}]
        experiment["crystal"] = 0
    if scan is not None:
        first, n, start, width = scan
        doc["goniometer"] = [{"rotation_axis": [1.0, 0.0, 0.0],
                              "fixed_rotation": [1, 0, 0, 0, 1, 0, 0, 0, 1],
                              "setting_rotation": [1, 0, 0, 0, 1, 0, 0, 0, 1]}]
        properties = {"oscillation": [start + i * width for i in range(n)],
                      "exposure_time": [1.0] * n, "epochs": [0.0] * n}
        if n == 1:
            properties["oscillation_width"] = [width]
        doc["scan"] = [{"image_range": [first, first + n - 1], "batch_offset": 0,
                        "properties": properties}]
        experiment["goniometer"] = 0
        experiment["scan"] = 0
    return doc
