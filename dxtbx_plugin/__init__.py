"""nbnumba's NXmx files in DIALS: dxtbx's NXmx reader, plus the beam's polarization.

dxtbx's reader of NXmx files (``FormatNXmx``, DIALS 3.26 and later) builds every beam
with its default polarization (a fraction 0.999 in the horizontal plane, a synchrotron's)
and reads no polarization from the file. nbnumba states the simulated one in
``/entry/instrument/beam/incident_polarization_stokes`` (the Stokes vector in the NeXus
frame, one row per frame). :class:`FormatNXmxNbnumba` is ``FormatNXmx`` for the files
nbnumba writes (the root's ``creator`` attribute begins with ``nbnumba``) with the beam's
polarization normal and fraction taken from that vector, so that ``dials.import`` gives
the simulated polarization without options.

dxtbx finds the class through the ``dxtbx.format`` entry point that nbnumba's package
declares: install nbnumba into DIALS' Python (``pip install --no-deps`` is enough; this
module needs only h5py and dxtbx and imports nothing of nbnumba).
"""
import math

import h5py
from dxtbx.format.FormatNXmx import FormatNXmx

#: where nbnumba writes the Stokes vector (S0, S1, S2, S3) of each frame
STOKES = "/entry/instrument/beam/incident_polarization_stokes"


def _creator(handle):
    value = handle.attrs.get("creator", "")
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def polarization(stokes):
    """(normal, fraction) of dxtbx's beam model from a Stokes vector in the NeXus frame.

    The linearly polarized part, of degree P = sqrt(S1^2 + S2^2)/S0, has its E-vector at
    psi = atan2(S2, S1)/2 from the NeXus x axis (counter-clockwise about the beam); the
    fraction of the intensity polarized in the plane of the beam and that E-vector is
    (1 + P)/2. dxtbx's frame is the NeXus frame turned by 180 degrees about y, so the
    E-vector is (-cos psi, sin psi, 0) there and the plane's normal (sin psi, cos psi, 0)
    (dxtbx's default normal (0, 1, 0) is psi = 0: horizontal polarization).
    """
    s0, s1, s2 = (float(x) for x in stokes[:3])
    degree = math.hypot(s1, s2) / s0 if s0 > 0.0 else 0.0
    psi = 0.5 * math.atan2(s2, s1)
    return (math.sin(psi), math.cos(psi), 0.0), 0.5 * (1.0 + min(degree, 1.0))


class FormatNXmxNbnumba(FormatNXmx):
    """An NXmx file written by nbnumba: FormatNXmx with the polarization it states."""

    @staticmethod
    def understand(image_file):
        try:
            with h5py.File(image_file, "r") as handle:
                return _creator(handle).startswith("nbnumba") and STOKES in handle
        except (OSError, KeyError, ValueError):
            return False

    def _start(self):
        with h5py.File(self._image_file, "r") as handle:
            self._stokes = handle[STOKES][()].reshape(-1, 4)
        super()._start()

    def _beam(self, index=None):
        beam = super()._beam(index)
        row = min(index or 0, len(self._stokes) - 1)
        normal, fraction = polarization(self._stokes[row])
        beam.set_polarization_normal(normal)
        beam.set_polarization_fraction(fraction)
        return beam
