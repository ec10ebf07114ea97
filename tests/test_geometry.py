"""Detector geometry against the worked examples of spec/geometry.md section 8.

The vectors there are the golden binary's ``DETECTOR_*`` prints (``%.15g``), so each
component is compared within half a unit of its 15th significant digit; SMV header
values are ``%g`` text and are compared as text.
"""
import math
from types import SimpleNamespace

import pytest

from nbnumba import config_from_args
from nbnumba.config import DetectorConfig, SimulationConfig
from nbnumba.constants import RTD
from nbnumba.geometry import resolve_detector
from nbnumba.output import smv_header

MM = 1e-3


def near_print(value, text):
    """True when ``value`` prints as ``text`` under C ``%.15g`` (within its last digit)."""
    printed = float(text.replace("\u2212", "-"))
    if printed == 0.0:
        return value == 0.0
    half_unit = 0.5 * 10.0 ** (math.floor(math.log10(abs(printed))) - 14)
    return abs(value - printed) <= half_unit + math.ulp(printed)


def assert_vector(got, printed, what):
    texts = [t.strip() for t in printed.split(",")]
    assert all(near_print(v, t) for v, t in zip(got, texts)), f"{what}: {got} vs ({printed})"


def header(g, det):
    """SMV header fields (key -> text) that nbnumba writes for this geometry."""
    setup = SimpleNamespace(geometry=g, config=SimulationConfig(detector=det), osc=0.0)
    fields = {}
    for line in smv_header(setup).decode().splitlines():
        if "=" in line:
            key, text = line.split("=", 1)
            fields[key] = text.rstrip(";")
    return fields


def assert_header(g, det, **expected):
    """expected: KEY="a, b" (comma-separated %g texts; DIALS_ORIGIN uses one key)."""
    fields = header(g, det)
    pairs = {"BEAM_CENTER": ("BEAM_CENTER_X", "BEAM_CENTER_Y"),
             "ADXV": ("ADXV_CENTER_X", "ADXV_CENTER_Y"),
             "MOSFLM": ("MOSFLM_CENTER_X", "MOSFLM_CENTER_Y"),
             "DENZO": ("DENZO_X_BEAM", "DENZO_Y_BEAM"),
             "ORG": ("XDS_ORGX", "XDS_ORGY"),
             "DIST": ("DISTANCE", "CLOSE_DISTANCE")}
    for name, text in expected.items():
        want = [t.strip().replace("\u2212", "-") for t in text.split(",")]
        if name == "DIALS_ORIGIN":
            got = fields["DIALS_ORIGIN"].split(",")
        elif name in pairs:
            got = [fields[k] for k in pairs[name]]
        else:
            got = [fields[name]]
        assert got == want, f"{name}: {got} vs {want}"


# ---------------------------------------------------------------- default 1024 x 1024
DEFAULT_TABLE = [
    # convention, pix0, BEAM_CENTER, ADXV, MOSFLM, DENZO, ORGX/Y, DIALS_ORIGIN
    ("MOSFLM", "0.1, 0.0513, -0.0513", "51.25, 51.25", "51.3, 51.1", "51.25, 51.25",
     "51.3, 51.3", "513.5, 513.5", "-51.3, 51.3, -100"),
    ("DENZO", "0.1, 0.05125, -0.05125", "51.25, 51.25", "51.25, 51.15", "51.2, 51.2",
     "51.25, 51.25", "513, 513", "-51.25, 51.25, -100"),
    ("ADXV", "-0.05125, 0.05125, 0.1", "51.25, 51.15", "51.25, 51.15", "51.2, 51.2",
     "51.25, 51.25", "513, 513", "100, 51.25, 51.25"),
    ("XDS", "-0.0512, -0.0512, 0.1", "51.2, 51.2", "51.2, 51.2", "51.15, 51.15",
     "51.2, 51.2", "512.5, 512.5", "100, -51.2, 51.2"),
    ("DIALS", "-0.0512, -0.0512, 0.1", "51.2, 51.2", "51.2, 51.2", "51.15, 51.15",
     "51.2, 51.2", "512.5, 512.5", "100, -51.2, 51.2"),
]


@pytest.mark.parametrize("conv,pix0,bc,adxv,mosflm,denzo,org,dials", DEFAULT_TABLE,
                         ids=[r[0] for r in DEFAULT_TABLE])
def test_default_detector(conv, pix0, bc, adxv, mosflm, denzo, org, dials):
    det = DetectorConfig(convention=conv)
    g = resolve_detector(det)
    assert (g.fpixels, g.spixels) == (1024, 1024)
    assert_vector(g.pix0, pix0, "pix0")
    assert_header(g, det, BEAM_CENTER=bc, ADXV=adxv, MOSFLM=mosflm, DENZO=denzo, ORG=org,
                  DIALS_ORIGIN=dials, DIST="100, 100")


# ------------------------------------------- -detector_rotx 5 -roty 3 -rotz 2 -twotheta 15
MOSFLM_ROT = ("0.0311947630447082, -0.096650175316428, 0.994829447880333",
              "-0.228539518954453, -0.969636205471835, -0.0870362988312832",
              "0.973034724475264, -0.224642766741965, -0.0523359562429438")
ROTATED_TABLE = [
    ("MOSFLM", *MOSFLM_ROT, "0.11012378597817, 0.0547004913344379, -0.0465697885462163",
     "97.4964, 97.3035"),
    ("DENZO", *MOSFLM_ROT, "0.110113918740374, 0.0546471770153985, -0.0465243988887638",
     "97.4964, 97.3035"),
    ("ADXV", "0.998021196624068, 0.0201185841410257, -0.0595729272507496",
     "0.0302080931112661, -0.98434442741118, 0.17364768738782",
     "0.0551467333542405, 0.175103657291096, 0.983004347398138",
     "-0.0526967510989359, 0.0494165744675954, 0.0941536685429751", "98.8113, 98.3004"),
    ("XDS", "0.998021196624068, 0.0472096685796778, -0.0415323763064385",
     "-0.0302080931112661, 0.939291123905639, 0.341788905119319",
     "0.0551467333542405, -0.339857958189416, 0.938858565522879",
     "-0.0440658714703352, -0.0843189110655796, 0.0780272805624652", "100, 99.4829"),
    ("DIALS", "0.950468906783782, 0.0348516681551873, -0.30885954488091",
     "-0.00665212554634647, 0.99574703303416, 0.0918890386791754",
     "0.310748461722593, -0.0852831016700733, 0.94665843159324",
     "-0.0174092471388416, -0.0612508675956907, 0.105285258400845", "100, 99.4829"),
]


def rotated(conv):
    return DetectorConfig(convention=conv, rotx=5 / RTD, roty=3 / RTD, rotz=2 / RTD,
                          twotheta=15 / RTD)


@pytest.mark.parametrize("conv,f,s,o,pix0,dist", ROTATED_TABLE, ids=[r[0] for r in ROTATED_TABLE])
def test_rotated_twotheta_detector(conv, f, s, o, pix0, dist):
    det = rotated(conv)
    g = resolve_detector(det)
    assert_vector(g.fdet, f, "fdet")
    assert_vector(g.sdet, s, "sdet")
    assert_vector(g.odet, o, "odet")
    assert_vector(g.pix0, pix0, "pix0")
    assert_header(g, det, DIST=dist, TWOTHETA="15")


def test_rotated_mosflm_header_centres():
    det = rotated("MOSFLM")
    g = resolve_detector(det)
    assert_header(g, det, ADXV="51.2219, 50.5278", MOSFLM="51.8222, 51.1719",
                  DENZO="51.8722, 51.2219", ORG="482.305, 742.04",
                  DIALS_ORIGIN="-46.5698, 54.7005, -110.124")


# ------------------------------------------------- 40 x 40 detector, 0.4 mm, 80 mm
def small(**kw):
    return DetectorConfig(pixel_size=0.4 * MM, fpixels=40, spixels=40, distance=80 * MM, **kw)


SMALL_TABLE = [
    ("mosflm_xbeam", dict(convention="MOSFLM", xbeam=7 * MM, ybeam=9 * MM), "BEAM",
     "0.08, 0.0072, -0.0092", dict(ADXV="9.2, 8.8", MOSFLM="7, 9", DENZO="7.2, 9.2",
                                   ORG="23.5, 18.5")),
    ("denzo_xbeam", dict(convention="DENZO", xbeam=7 * MM, ybeam=9 * MM), "BEAM",
     "0.08, 0.007, -0.009", dict(ADXV="9, 9", MOSFLM="6.8, 8.8", ORG="23, 18")),
    ("adxv_xbeam", dict(convention="ADXV", xbeam=7 * MM, ybeam=9 * MM), "BEAM",
     "-0.007, 0.007, 0.08", dict(ADXV="7, 9", MOSFLM="6.8, 6.8", ORG="18, 18")),
    ("xds_orgx", dict(convention="XDS", orgx=12.0, orgy=25.0, pivot="SAMPLE"), "SAMPLE",
     "-0.0046, -0.0098, 0.08", dict(BEAM_CENTER="4.6, 9.8", ORG="12, 25")),
    ("dials_orgx_twotheta", dict(convention="DIALS", orgx=12.0, orgy=25.0, twotheta=5 / RTD,
                                 pivot="SAMPLE"), "SAMPLE",
     "0.00238996380859062, -0.0098, 0.0800964922639789",
     dict(DIALS_ORIGIN="80.0965, -9.8, -2.38996")),
    ("custom_twotheta", dict(convention="CUSTOM", fdet_vector=(0, 0, 1), sdet_vector=(0, -1, 0),
                             odet_vector=(1, 0, 0), beam_vector=(1, 0, 0), xbeam=6 * MM,
                             ybeam=8 * MM, twotheta_axis=(0, 0, -1), twotheta=10 / RTD,
                             pivot="SAMPLE"), "SAMPLE",
     "0.0801738056623121, -0.00601339218925676, -0.006", dict(ORG="15.5, 20.5", TWOTHETA="10")),
    ("custom_close_distance_rotx", dict(convention="CUSTOM", beam_vector=(1, 0, 0),
                                        close_distance=90 * MM, xbeam=6 * MM, ybeam=8 * MM,
                                        rotx=4 / RTD, pivot="BEAM"), "BEAM",
     "0.09, 0.00839905124454335, -0.00542733251160594", dict(DISTANCE="90")),
]


@pytest.mark.parametrize("name,kw,pivot,pix0,hdr", SMALL_TABLE, ids=[r[0] for r in SMALL_TABLE])
def test_small_detector(name, kw, pivot, pix0, hdr):
    det = small(**kw)
    g = resolve_detector(det)
    assert g.frame.pivot == pivot
    assert_vector(g.pix0, pix0, "pix0")
    assert_header(g, det, **hdr)


def test_dials_twotheta_fast_axis():
    g = resolve_detector(small(convention="DIALS", orgx=12.0, orgy=25.0, twotheta=5 / RTD))
    assert_vector(g.fdet, "0.996194698091746, 0, -0.0871557427476582", "fdet")


def test_custom_twotheta_slow_axis():
    kw = dict(SMALL_TABLE[5][1])
    g = resolve_detector(small(**kw))
    assert_vector(g.sdet, "-0.17364817766693, -0.984807753012208, 0", "sdet")


# --------------------------------------------------- smaller checks: 64 x 64, 0.1 mm
def det64(**kw):
    return DetectorConfig(fpixels=64, spixels=64, **kw)


@pytest.mark.parametrize("kw,pix0", [
    (dict(convention="MOSFLM"), "0.1, 0.0033, -0.0033"),
    (dict(convention="XDS"), "-0.0032, -0.0032, 0.1"),
    (dict(convention="DIALS"), "-0.0032, -0.0032, 0.1"),
    (dict(convention="ADXV"), "-0.00325, 0.00325, 0.1"),
    (dict(convention="DENZO"), "0.1, 0.00325, -0.00325"),
    (dict(convention="XDS", orgx=10.0, orgy=20.0), "-0.00095, -0.00195, 0.1"),
], ids=["mosflm", "xds", "dials", "adxv", "denzo", "xds_orgx"])
def test_64_pixel_pix0(kw, pix0):
    assert_vector(resolve_detector(det64(**kw)).pix0, pix0, "pix0")


def test_mosflm_twotheta_20():
    g = resolve_detector(det64(convention="MOSFLM", twotheta=20 / RTD))
    assert_vector(g.odet, "0.939692620785908, -0.342020143325669, 0", "odet")
    assert_vector(g.pix0, "0.101128666472975, 0.0031009856485935, -0.0033", "pix0")


def test_named_conventions_force_pivot():
    for conv, pivot in (("MOSFLM", "BEAM"), ("DENZO", "BEAM"), ("ADXV", "BEAM"),
                        ("XDS", "SAMPLE"), ("DIALS", "SAMPLE")):
        for asked in ("BEAM", "SAMPLE"):
            g = resolve_detector(det64(convention=conv, pivot=asked))
            assert g.frame.pivot == pivot, (conv, asked)


def test_xds_beam_centre_does_not_move_detector():
    plain = resolve_detector(det64(convention="XDS"))
    moved = resolve_detector(det64(convention="XDS", xbeam=1 * MM, ybeam=2 * MM))
    assert moved.pix0 == plain.pix0


# ------------------------------------------------------ the same through the CLI flags
BASE = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "1", "-N", "1"]
SMALL_FLAGS = ["-detpixels", "40", "-pixel", "0.4", "-distance", "80"]
CLI_TABLE = [
    (SMALL_FLAGS + "-mosflm -Xbeam 7 -Ybeam 9".split(), "0.08, 0.0072, -0.0092"),
    (SMALL_FLAGS + "-xds -ORGX 12 -ORGY 25".split(), "-0.0046, -0.0098, 0.08"),
    (SMALL_FLAGS + "-dials -ORGX 12 -ORGY 25 -twotheta 5".split(),
     "0.00238996380859062, -0.0098, 0.0800964922639789"),
    (SMALL_FLAGS + ("-fdet_vector 0 0 1 -sdet_vector 0 -1 0 -odet_vector 1 0 0 -beam_vector "
                    "1 0 0 -Xbeam 6 -Ybeam 8 -twotheta_axis 0 0 -1 -twotheta 10").split(),
     "0.0801738056623121, -0.00601339218925676, -0.006"),
    (SMALL_FLAGS + "-beam_vector 1 0 0 -close_distance 90 -Xbeam 6 -Ybeam 8 -detector_rotx 4"
     .split(), "0.09, 0.00839905124454335, -0.00542733251160594"),
    ("-detector_rotx 5 -detector_roty 3 -detector_rotz 2 -twotheta 15".split(),
     ROTATED_TABLE[0][4]),
    ("-xds -detector_rotx 5 -detector_roty 3 -detector_rotz 2 -twotheta 15".split(),
     ROTATED_TABLE[3][4]),
]


CLI_IDS = ["mosflm_xbeam", "xds_orgx", "dials_twotheta", "custom_twotheta", "custom_close_rotx",
           "mosflm_rotated", "xds_rotated"]


@pytest.mark.parametrize("flags,pix0", CLI_TABLE, ids=CLI_IDS)
def test_cli_flags_give_worked_pix0(flags, pix0, tmp_path):
    cfg, _ = config_from_args(BASE + flags, cwd=str(tmp_path))
    assert_vector(resolve_detector(cfg.detector).pix0, pix0, "pix0")


def test_twotheta_axis_alone_sets_no_angle(tmp_path):
    """Exact flag matching: -twotheta_axis gives CUSTOM with the axis only (the C's
    substring match would also swing the detector by 1 degree)."""
    cfg, _ = config_from_args(BASE + ["-detpixels", "64", "-twotheta_axis", "1", "0", "0"],
                              cwd=str(tmp_path))
    assert cfg.detector.convention == "CUSTOM"
    assert cfg.detector.twotheta == 0.0
    g = resolve_detector(cfg.detector)
    assert g.fdet == (0.0, 0.0, 1.0)
