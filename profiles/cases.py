"""The benchmark cases: nanoBragg command-line flags (the same for nbnumba and the C).

Every case gets :data:`COMMON` first, then its own flags; later flags override earlier
ones in both programs, so a case may replace a common flag (P5's ``-oversample 2``).
"""
import os

#: the repository's examples directory (input files of the README example)
EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")

#: flags of every case: no extra images, one float image named ``out.bin``
COMMON = ["-nopgm", "-nonoise", "-seed", "1", "-floatfile", "out.bin", "-oversample", "1"]

#: the name of the float image each run writes (relative to its working directory)
FLOATFILE = "out.bin"

_P1 = ("-cell 100 100 100 90 90 90 -lambda 6.2 -N 5 -default_F 100 -distance 100 "
       "-detpixels 1024")

#: case name -> its own flags, in the order the suite runs them
CASES = {
    "P1": _P1,
    "P2": _P1.replace("-detpixels 1024", "-detpixels 2048"),
    "P3": ("-cell 100 100 100 90 90 90 -lambda 1.0 -N 10 -default_F 100 -distance 100 "
           "-detpixels 1024"),
    "P4": ("-cell 70 80 90 85 95 105 -lambda 1.5 -N 8 -misset 10 5 3 -default_F 100 "
           "-distance 100 -detpixels 512"),
    "P5": ("-cell 100 100 100 90 90 90 -lambda 6.2 -N 5 -default_F 100 -distance 100 "
           "-detpixels 256 -oversample 2 -detector_thick 200 -detector_thicksteps 3 "
           "-hdivrange 0.1 -vdivrange 0.1 -hdivstep 0.02 -vdivstep 0.02 -dispersion 5 "
           "-dispsteps 3"),
    "P6": ("-cell 70 80 90 75 85 95 -N 5 -default_F 100 -lambda 1.0 -mosaic 0.5 "
           "-mosaic_dom 5 -phi 0 -osc 90 -phisteps 9 -detector_rotx 5 -detector_roty 3 "
           "-detector_rotz 2 -twotheta 10 -detector_abs 500 -detector_thick 450 "
           "-thicksteps 5 -polar 0.95 -distance 100 -detpixels 512"),
    "P7": ("-cell 100 100 100 90 90 90 -lambda 0.5 -N 5 -default_F 100 -distance 500 "
           "-pixel 0.05 -detpixels 4096 -roi 1792 2303 1792 2303"),
    "F4096": _P1.replace("-detpixels 1024", "-detpixels 4096"),
    # the README's example (two sources, a structure-factor file) at 2048 x 2048
    "README2": ("-mat {0}/A_cubic.mat -hkl {0}/P1_grid.hkl -sourcefile {0}/two_sources.txt "
                "-N 5 -distance 100 -detpixels 2048").format(EXAMPLES),
}

#: appended to a case's flags for a tiny render (compile timings, cache warm-up): an
#: 8 x 8 pixel region of the same geometry, so the same kernels are compiled
TINY_ROI = ["-roi", "0", "7", "0", "7"]


def case_args(name):
    """The full argument list of case ``name`` (without ``-noprogress``)."""
    return COMMON + CASES[name].split()


def c_args(name):
    """The C program's argument list for case ``name``.

    The same as :func:`case_args` except that a first phi angle of exactly 0 becomes
    1e-30 degrees: the C program keeps a stale crystal orientation at phi = 0 (a defect
    nbnumba corrects, see docs/parity.md), and 1e-30 degrees makes it rotate the crystal
    properly (by the identity, to double precision) without changing its work.
    """
    args = case_args(name)
    return [("1e-30" if a == "0" and i > 0 and args[i - 1] == "-phi" else a)
            for i, a in enumerate(args)]


def tiny_args(name):
    """Case ``name`` restricted to an 8 x 8 pixel region of interest."""
    return case_args(name) + TINY_ROI


def select(spec):
    """Case names from a comma-separated list ("P1,P5"); None or "all": every case.

    Raises ValueError naming an unknown case.
    """
    if spec is None or spec.strip().lower() == "all":
        return list(CASES)
    names = [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        raise ValueError("unknown case(s) %s; choose from %s"
                         % (", ".join(unknown), ", ".join(CASES)))
    return names
