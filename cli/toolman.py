"""Man pages of ``nb-nonbragg`` and ``nb-noisify``, generated from their flag tables::

    python -m nbnumba_cli.toolman            # writes docs/nb-nonbragg.1 and docs/nb-noisify.1
    python -m nbnumba_cli.toolman --check    # exit 1 if either is stale

Built with argparse-manpage (the ``man`` extra), like the ``nbnumba`` man page.
"""
import argparse
import sys
from pathlib import Path

from .manpage import _man_date, _section_roff, _strip_date

DOCS = Path("docs")

_COMMON = [
    ("exit status", ["0 on success; 9 on any error (a bad or unknown flag, an unreadable or "
                     "malformed input, an output that cannot be written): one line on stderr, "
                     "and no output file is written or replaced."]),
    ("see also", ["nbnumba(1). docs/parity.md says what is identical to the C program and "
                  "where nbnumba deliberately differs; docs/user-guide.md has a recipe for a "
                  "realistic image (crystal, water and air, then detector effects)."]),
]

PAGES = {
    "nb-nonbragg": dict(
        module="nonbragg",
        short="diffuse scattering of an amorphous sample, as the C program nonBragg",
        synopsis="nb-nonbragg -stol water.stol [flags]",
        sections=[("description", [
            "Renders the X-ray scattering of water, air or any amorphous material from a "
            "table of its structure factor versus sin(theta)/lambda (-stol; -4stol and -Q "
            "take 4 sin(theta)/lambda and 4 pi sin(theta)/lambda), and writes the float "
            "image, the SMV integer image, a PGM preview and a Poisson noise image, as "
            "the C nonBragg does. The images are bit-identical to the C program's.",
            ("", ["nb-nonbragg -stol water.stol -thickness 0.1 -detpixels 512 -seed 1"])])]),
    "nb-noisify": dict(
        module="noisify",
        short="detector effects on an ideal image, as the C program noisify",
        synopsis="nb-noisify -floatfile floatimage.bin [flags]",
        sections=[("description", [
            "Turns a raw float image of photons per pixel into what a detector records: "
            "Poisson noise, 1/f source flicker, a static calibration error, a point-spread "
            "function (-psf gauss|fiber), gain, read-out noise and ADC offset; writes the "
            "noiseless SMV image, a PGM preview and the noise image, as the C noisify does, "
            "bit-identical for the same seeds. -psf_method direct is the C's sum; the "
            "default (auto) convolves the far part of wide PSF discs by FFT, within 1e-6 "
            "of the image maximum of the C's sum and much faster.",
            ("", ["nb-noisify -floatfile total.bin -psf fiber -readout 3 -seed 1"])])]),
}


def man_page(name):
    """The roff text of one command's man page."""
    try:
        from argparse_manpage.manpage import Manpage
    except ImportError:  # pragma: no cover - depends on the environment
        raise SystemExit("argparse-manpage is needed: pip install 'nbnumba[man]'") from None
    import importlib

    from nbnumba import __version__
    info = PAGES[name]
    parser = importlib.import_module(f"nbnumba_cli.{info['module']}").parser()
    page = Manpage(parser)
    page.description = info["short"]
    page.source = f"nbnumba {__version__}"
    page.manual = "nbnumba manual"
    page.date = _man_date()
    page.add_section("synopsis", "=", _section_roff([("", [info["synopsis"]])]))
    for heading, paragraphs in info["sections"] + _COMMON:
        page.add_section(heading, "=", _section_roff(paragraphs))
    title, rest = str(page).split("\n", 1)
    return "\n".join([title, ".nh", ".ad l", rest])


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m nbnumba_cli.toolman",
                                 description="Generate the nb-nonbragg and nb-noisify man pages.")
    ap.add_argument("--check", action="store_true", help="exit 1 if a page in docs/ is stale")
    ap.add_argument("--docs", default=str(DOCS), help="the docs folder (default: docs)")
    args = ap.parse_args(argv)
    stale = []
    for name in PAGES:
        path = Path(args.docs) / f"{name}.1"
        text = man_page(name)
        if args.check:
            if not path.exists() or _strip_date(path.read_text()) != _strip_date(text):
                stale.append(str(path))
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        sys.stderr.write("stale: %s (regenerate with: python -m nbnumba_cli.toolman)\n"
                         % ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
