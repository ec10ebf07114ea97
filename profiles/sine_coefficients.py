"""Regenerate the polynomial coefficients of the vectorisable sine (nbnumba/physics.py).

    python -m profiles.sine_coefficients          # needs mpmath (pip install mpmath)

Fits (sin r - r)/r^3 and (cos r - 1 + r^2/2)/r^4 as polynomials of degree 5 in z = r^2
on [0, (pi/4)^2] by Chebyshev interpolation at 60 significant digits (close to the
minimax polynomial), and prints the coefficients rounded to double with the fit errors.
"""
import mpmath as mp


def _sin_part(z):
    if z == 0:
        return mp.mpf(-1) / 6
    r = mp.sqrt(z)
    return (mp.sin(r) - r) / (r * z)


def _cos_part(z):
    if z == 0:
        return mp.mpf(1) / 24
    r = mp.sqrt(z)
    return (mp.cos(r) - 1 + z / 2) / (z * z)


def main():
    mp.mp.dps = 60
    z_max = (mp.pi / 4) ** 2
    for name, f in (("sin: _S3.._S13", _sin_part), ("cos: _C4.._C14", _cos_part)):
        poly, err = mp.chebyfit(f, [0, z_max], 6, error=True)
        print("%s (error %.2e):" % (name, float(err)), [repr(float(c)) for c in poly[::-1]])


if __name__ == "__main__":
    main()
