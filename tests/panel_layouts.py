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
