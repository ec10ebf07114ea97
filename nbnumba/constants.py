"""Physical and numerical constants, with the exact values the C nanoBragg uses.

Every angle conversion in nbnumba divides by (or multiplies by) ``RTD``, the C's
degrees-per-radian constant; ``math.radians`` differs from it in the last bit for
about 11 % of inputs, which is enough to break bit parity.
"""
import math

#: degrees per radian, computed as the C does: 180 * (1/pi)
RTD = 180.0 * (1.0 / math.pi)

#: classical electron radius squared (Thomson cross-section / (8 pi / 3)), m^2
R_E_SQUARED = 7.94079248018965e-30

#: Avogadro's number as the C writes it, 1/mol
AVOGADRO = 6.02214179e23

#: forward-scattering structure factor and molar mass of water (electrons, g/mol)
WATER_F = 2.57
WATER_MW = 18.0

#: default incident fluence, photons/m^2
DEFAULT_FLUENCE = 125932015286227086360700780544.0

#: fixed distance from sample to every source point, m (no flag changes it)
SOURCE_DISTANCE = 10.0

#: smallest positive normal double, the C's DBL_MIN
DBL_MIN = 2.2250738585072014e-308

#: photon energy (eV) times wavelength (Angstrom), as the C uses for -energy
HC_EV_ANGSTROM = 12398.42

#: largest value an unsigned 16-bit SMV pixel can hold
SMV_MAX = 65535.0
