"""nbnumba.nonbragg / nbnumba.noisify as a library, the PSF's two methods, and bad input
to nb-nonbragg and nb-noisify (one line, exit status 9, nothing written)."""
import contextlib
import io
import os
from pathlib import Path

import numba
import numpy as np
import pytest

import nbnumba
from nbnumba.toolbox import psf
from nbnumba_cli import noisify as noisify_cli
from nbnumba_cli import nonbragg as nonbragg_cli

INPUTS = Path(__file__).parent / "data" / "toolbox" / "inputs"


def _psf_image(seed=3, size=96):
    rng = np.random.default_rng(seed)
    img = rng.poisson(2.0, (size, size + 7)).astype(np.float32)
    img[40:44, 50:53] = 2e5
    img[10, size + 6] = 5e4          # right edge: its disc wraps onto column 0
    img[70, 3] = 9e3
    return img


@pytest.mark.parametrize("kind,fwhm,radius", [("fiber", 0.46, 0), ("fiber", 2.0, 0),
                                              ("gauss", 3.0, 0), ("fiber", 0.46, 60)])
def test_fft_path_within_tolerance_of_direct_sum(kind, fwhm, radius):
    img = _psf_image()
    direct = psf.apply(img, kind, fwhm, radius, "direct")
    for method, tolerance in (("auto", psf.FFT_TOLERANCE), ("fft", psf.FULL_FFT_TOLERANCE)):
        other = psf.apply(img, kind, fwhm, radius, method)
        worst = np.abs(other.astype(float) - direct).max() / direct.max()
        assert worst <= tolerance, (method, worst)
    # the automatic method really takes the FFT path here
    assert (psf.apply(img, kind, fwhm, radius, "auto") != direct).any() or kind == "gauss"


def test_direct_sum_independent_of_threads():
    img = _psf_image(size=80)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = psf.apply(img, "fiber", 0.46, 0, "direct")
        numba.set_num_threads(max(2, before))
        many = psf.apply(img, "fiber", 0.46, 0, "direct")
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(one, many)


def test_library_composes_without_files():
    water = np.loadtxt(INPUTS / "water.stol")
    bg = nbnumba.nonbragg(water, xpixels=32, ypixels=24, pixel_size=0.5e-3, distance=0.06)
    assert bg.image.shape == (24, 32) and bg.image.dtype == np.float32
    assert bg.image.min() > 0
    counts = nbnumba.noisify(bg.image * 1e-9, seed=1, psf="fiber", readout=2.0)
    assert counts.noise_pixels.shape == (24, 32) and counts.noise_pixels.dtype == np.uint16
    again = nbnumba.noisify(bg.image * 1e-9, seed=1, psf="fiber", readout=2.0)
    assert np.array_equal(counts.noise_pixels, again.noise_pixels)


@pytest.mark.parametrize("kwargs,message", [
    (dict(psf="fiber", psf_fwhm=0.0), "zero size"),
    (dict(psf="airy"), "unknown PSF"),
    (dict(psf_method="fast"), "psf_method"),
])
def test_library_rejects_bad_values(kwargs, message):
    with pytest.raises(nbnumba.ConfigError, match=message):
        nbnumba.noisify(np.ones((4, 4)), seed=1, **kwargs)


def test_library_rejects_nan_image():
    img = np.ones((4, 4))
    img[1, 1] = np.nan
    with pytest.raises(nbnumba.ConfigError, match="NaN"):
        nbnumba.noisify(img, seed=1)


def _run(module, args, work, capsys):
    cwd = os.getcwd()
    os.chdir(work)
    try:
        rc = module.run(args, stdout=io.StringIO())
    finally:
        os.chdir(cwd)
    err = capsys.readouterr().err
    return rc, err


def _stage(work):
    for f in INPUTS.iterdir():
        (work / f.name).write_bytes(f.read_bytes())
    (work / "intimage.img").write_bytes(b"keep me")


NONBRAGG_BAD = [
    ("word.stol", "0.1 2\nwater 3\n", "is not a number"),
    ("order.stol", "0.1 2\n0.3 1\n0.2 1\n", "does not increase"),
    ("empty.stol", "\n  \n", "no data"),
    ("noF.stol", "0.1\n0.2\n", "no F values"),
    ("inf.stol", "0.1 2\n0.2 inf\n", "finite"),
    ("far.stol", "0 1\n1e300 2\n", "sin(theta)/lambda 1e+300 is out of range"),
    ("bigF.stol", "0 1\n0.1 1e30\n0.3 2\n", "pixels overflow single precision"),
]


@pytest.mark.parametrize("name,text,message", NONBRAGG_BAD, ids=[b[0] for b in NONBRAGG_BAD])
def test_nonbragg_malformed_table(name, text, message, tmp_path, capsys):
    _stage(tmp_path)
    (tmp_path / name).write_text(text)
    rc, err = _run(nonbragg_cli, ["-stol", name, "-detpixels", "8"], tmp_path, capsys)
    assert rc == 9 and message in err and err.count("\n") == 1
    assert (tmp_path / "intimage.img").read_bytes() == b"keep me"
    assert not (tmp_path / "floatimage.bin").exists()


@pytest.mark.parametrize("args,message", [
    (["-detpixels", "8"], "no scattering table"),
    (["-stol", "missing.stol"], "missing.stol"),
    (["-stol", "water.stol", "-distanc", "5"], "did you mean -distance"),
    (["-stol", "water.stol", "-detpixels", "2.5"], "integer"),
    (["-stol", "water.stol", "-flux", "1e12", "-beamsize", "0"], "beamsize"),
    (["-stol", "water.stol", "-divsteps", "1"], "no sources"),
    (["-stol", "water.stol", "-pixel", "0"], "pixel_size"),
])
def test_nonbragg_bad_arguments(args, message, tmp_path, capsys):
    _stage(tmp_path)
    rc, err = _run(nonbragg_cli, args, tmp_path, capsys)
    assert rc == 9 and message in err and err.count("\n") == 1
    assert (tmp_path / "intimage.img").read_bytes() == b"keep me"


def _main(module, args, work, capsys):
    """The command's main(): its exit status and stderr (warnings included, as lines)."""
    cwd = os.getcwd()
    os.chdir(work)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            rc = module.main(args)
    finally:
        os.chdir(cwd)
    return rc, capsys.readouterr().err


@pytest.mark.parametrize("args,message", [
    # work and memory bounded before anything is allocated
    (["-divergence", "1", "-divsteps", "100000"], "10000000000 sources is more than"),
    (["-dispersion", "1", "-dispsteps", "100000000"], "100000000 wavelength steps is more"),
    (["-hdivrange", "1", "-hdivstep", "1e-300"], "horizontal divergence steps is more"),
    # integer values no SMV pixel holds
    (["-ignore", "70000"], "70000 is not an SMV pixel value"),
    (["-ignore", "-1"], "-1 is not an SMV pixel value"),
    (["-ignore", "1e308"], "1e+308 is not an SMV pixel value"),
    (["-ignore", "9223372036854775808"], "is not an SMV pixel value"),
    # values whose image would be infinite or NaN (as the C's is)
    (["-fluence", "1e308"], "pixels overflow single precision"),
    (["-flux", "1e308"], "the fluence overflows"),
    (["-molecules", "1e308"], "the number of molecules overflows"),
    (["-MW", "1e-308"], "the number of molecules overflows"),
    (["-polar", "1e308"], "pixels overflow single precision"),
    # a wavelength flag out of any plausible range is refused as such; one from a source
    # file (not checked for plausibility) as too short
    (["-lambda", "1e-308"], "wavelength (flag -lambda, Angstrom) = 9.99999e-319 m is "
                            "implausible"),
    (["-energy", "1e308"], "m is implausible"),
    (["-sourcefile", "tiny.txt"], "a wavelength of 1e-308 m (-lambda, -energy, -sourcefile) "
                                  "is too short to compute sin(theta)/lambda"),
])
def test_nonbragg_limits_are_one_line(args, message, tmp_path, capsys):
    _stage(tmp_path)
    (tmp_path / "tiny.txt").write_text("-10 0 0 1 1e-308\n")
    rc, err = _main(nonbragg_cli, ["-stol", "water.stol", "-detpixels", "8"] + args, tmp_path,
                    capsys)
    assert rc == 9 and message in err and err.count("\n") == 1, err
    assert "internal error" not in err and "warning" not in err.lower()
    assert (tmp_path / "intimage.img").read_bytes() == b"keep me"
    assert not (tmp_path / "floatimage.bin").exists()


def test_nonbragg_library_refuses_what_the_command_refuses():
    water = np.loadtxt(INPUTS / "water.stol")
    with pytest.raises(nbnumba.ConfigError, match="SMV pixel value"):
        nbnumba.nonbragg(water, xpixels=4, ypixels=4, ignore=[70000])
    with pytest.raises(nbnumba.ConfigError, match="sources is more than"):
        nbnumba.nonbragg(water, xpixels=4, ypixels=4, hdivsteps=10 ** 4, vdivsteps=10 ** 4,
                         hdivrange=1e-3, vdivrange=1e-3)
    # within the bounds, the values the C keeps: a fractional ignore value is truncated
    kept = nbnumba.nonbragg(water, xpixels=4, ypixels=4, ignore=[3.7])
    assert np.isfinite(kept.image).all()


@pytest.mark.parametrize("args,message,status", [
    (["-psf", "fiber", "-psf_fwhm", "1e308"], "beyond single precision", 9),
    # no PSF: the width is not used, but a width beyond a centimetre is a unit mistake
    (["-psf_fwhm", "1e308"], "psf_fwhm (flag -psf_fwhm, um) = 1e+302 m is implausible", 9),
    (["-scale", "1e308"], "overflows single precision: scale (1e+308)", 9),
    (["-fluence", "1e308"], "fluence (1e+308 photons/m^2)", 9),
    (["-flicker", "1e308"], "flicker (1e+308)", 9),
    (["-calibration", "1e308"], "calibration (1e+308)", 9),
    (["-detpixels_x", "-64", "-detpixels_y", "-64"], "-64 is not a pixel count", 9),
])
def test_noisify_overflow_is_one_line(args, message, status, tmp_path, capsys):
    _stage(tmp_path)
    rc, err = _main(noisify_cli, ["-floatfile", "spot.bin"] + args, tmp_path, capsys)
    assert rc == status, err
    assert "warning" not in err.lower() and "internal error" not in err
    if message is None:
        assert err == ""
    else:
        assert message in err and err.count("\n") == 1, err
        assert (tmp_path / "intimage.img").read_bytes() == b"keep me"
        assert not (tmp_path / "noiseimage.img").exists()


def test_a_warning_in_a_command_is_one_line(capsys):
    import warnings
    from nbnumba_cli.guard import run_guarded

    def run(argv):
        with np.errstate(over="warn"):
            np.float32(1e308)             # NumPy: "overflow encountered in cast"
        warnings.warn("two\nlines")
        return 0

    assert run_guarded(run, [], "prog") == 0
    assert capsys.readouterr().err == ("prog: warning: overflow encountered in cast\n"
                                       "prog: note: two\n")


@pytest.mark.parametrize("args,message", [
    ([], "no input"),
    (["-floatfile", "spot.bin", "-detpixels", "50"], "not the 10000"),
    (["-floatfile", "edge.bin", "-detpixels_x", "7"], "not the"),
    (["-floatfile", "missing.bin"], "missing.bin"),
    (["-floatfile", "spot.bin", "-psf", "fiber", "-psf_fwhm", "0"], "zero size"),
    (["-floatfile", "spot.bin", "-psf", "fiber", "-psf_radius", "1e12"], "psf_radius"),
    (["-floatfile", "spot.bin", "-psf", "fiber", "-psf_radius", "99999999999"], "invalid integer"),
    (["-floatfile", "spot.bin", "-psf", "airy"], "PSF type"),
    (["-floatfile", "spot.bin", "-header", "spot.bin"], "SMV"),
    (["-floatfile", "spot.bin", "-readnois", "3"], "unknown flag"),
    (["-floatfile", "nan.bin"], "NaN"),
])
def test_noisify_bad_input(args, message, tmp_path, capsys):
    _stage(tmp_path)
    np.array([1.0, np.nan, 2.0, 3.0], "<f4").tofile(tmp_path / "nan.bin")
    rc, err = _run(noisify_cli, args, tmp_path, capsys)
    assert rc == 9 and message in err and err.count("\n") == 1, err
    assert (tmp_path / "intimage.img").read_bytes() == b"keep me"
    assert not (tmp_path / "noiseimage.img").exists()


def test_man_pages_up_to_date_and_complete():
    import argparse_manpage  # noqa: F401  - required (the 'man' extra), as for nbnumba.1
    from nbnumba_cli import toolman
    from nbnumba_cli.manpage import _strip_date
    root = Path(__file__).resolve().parent.parent
    for name, module in (("nb-nonbragg", nonbragg_cli), ("nb-noisify", noisify_cli)):
        text = toolman.man_page(name)
        assert _strip_date(text) == _strip_date((root / "docs" / f"{name}.1").read_text())
        for flag in module.FLAGS:
            for n in flag.names:
                assert n.replace("-", "\\-") in text, n
    assert "docs/nb-noisify.1" in (root / "pyproject.toml").read_text()
