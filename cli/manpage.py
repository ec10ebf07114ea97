"""The man page and the Markdown flag reference, both generated from the argparse parser.

Nothing here describes a flag: every name, argument, unit and default comes from
:func:`nbnumba_cli.parse.build_parser`, which is built from the flag table in
:mod:`nbnumba.flags`. Regenerate both files after changing a flag::

    python -m nbnumba_cli.manpage -o docs/nbnumba.1 --markdown docs/flags.md
    python -m nbnumba_cli.manpage --check          # exit 1 if either file is stale

``-o -`` writes the man page to stdout (``python -m nbnumba_cli.manpage -o - | man -l -``).
The man page is built with argparse-manpage (the ``man`` extra); the Markdown reference
needs nothing beyond the standard library. The date in the man page header is
``SOURCE_DATE_EPOCH`` when set (reproducible builds), else today; ``--check`` ignores it.
"""
import argparse
import datetime
import os
import sys
from pathlib import Path

from .parse import EPILOG, build_parser

#: the repository's docs folder, relative to the working directory (run from the root)
DOCS = Path("docs")
MAN_NAME = "nbnumba.1"
FLAGS_NAME = "flags.md"

SHORT_DESCRIPTION = "nanoBragg-compatible X-ray diffraction image simulator"

# Extra man page sections (plain text; escaped for roff by _roff). Each entry: heading,
# list of paragraphs; a paragraph that is a tuple is a tagged paragraph (tag, text).
_SYNOPSIS = "\n".join([
    ".B nbnumba",
    "\\-cell \\fIa b c alpha beta gamma\\fR | \\-mat \\fIFILE\\fR",
    "[\\-hkl \\fIFILE\\fR | \\-default_F \\fIF\\fR] [\\fIFLAG\\fR ...]",
    ".br",
    ".B nbnumba",
    "\\-h | \\-\\-help | \\-\\-version | \\-\\-compile",
    ".br",
    ".B nbnumba",
    "\\-\\-server start [\\-\\-idle\\-timeout \\fISECONDS\\fR] | stop | status",
])

_SECTIONS = [
    ("EXIT STATUS", [
        ("0", "the image was rendered and every output file written."),
        ("9", "any error: a bad or unknown flag, a missing or malformed input file, an "
              "output path that cannot be written, a configuration that cannot be "
              "simulated. The message is one line on stderr, starting with "
              "'nbnumba: error:'. All of these are found before rendering starts, and then "
              "no output file is written or replaced."),
        ("130", "interrupted (Ctrl-C); existing output files are left untouched."),
        ("128+N", "the resident renderer's process for this run was killed by signal N "
                  "(one line on stderr; its unfinished files were removed)."),
    ]),
    ("FILES", [
        ("floatimage.bin", "raw little-endian float32 image, photons per pixel, fast index "
                           "varying fastest (-floatfile)."),
        ("intimage.img", "noiseless SMV (ADSC) image, 512-byte text header and unsigned "
                         "16-bit pixels (-intfile)."),
        ("image.pgm", "8-bit binary PGM preview (-pgmfile; off with -nopgm)."),
        ("noiseimage.img", "SMV image with Poisson noise (-noisefile; off with -nonoise)."),
        ("FILE.expt, XDS.INP", "with -expt and -xds_inp: a DIALS experiment list and an "
                               "XDS input file describing the -intfile image and the true "
                               "crystal (the image name must end in its number, "
                               "e.g. sim_00001.img)."),
        ("Fdump.bin", "structure-factor cache written to the current directory whenever "
                      "-hkl is read, and read back when -hkl is absent (also with "
                      "-default_F), exactly as the C program does."),
        "Every file is written to a temporary name in its directory and renamed when "
        "complete, so an interrupted or failed run never leaves a partial file.",
    ]),
    ("ENVIRONMENT", [
        ("NUMBA_NUM_THREADS", "number of CPU threads (default: all cores), a whole number "
                              "from 1 to 8 per CPU (at least 64 allowed); -nthreads "
                              "overrides it for one run. Images never depend on it."),
        ("NUMBA_CACHE_DIR", "where compiled kernels are cached (default: next to the "
                            "installed modules); a run that compiles says so on stderr "
                            "first, later runs load the cache; --compile compiles every "
                            "kernel ahead of time. Without any writable cache, every run "
                            "compiles (slower) and says so."),
        ("NBNUMBA_DEBUG", "when set, an internal error shows the Python traceback instead "
                          "of a one-line message, and a run that the resident renderer "
                          "cannot take says why it renders in-process."),
        ("NBNUMBA_SERVER", "on (default): run through the resident renderer when one is "
                           "running (nbnumba --server start), never starting one; auto: "
                           "also start one in the background when none runs; off: always "
                           "run in-process. Runs through the renderer write the same files "
                           "and lines and leave with the same status."),
        ("NBNUMBA_SERVER_IDLE", "seconds without a run after which a renderer started "
                                "without --idle-timeout exits (default 900)."),
        ("XDG_RUNTIME_DIR", "the resident renderer's socket, lock and log are in "
                            "$XDG_RUNTIME_DIR/nbnumba, else /tmp/nbnumba-UID (a directory "
                            "of mode 0700 owned by the user; otherwise never used)."),
    ]),
    ("EXAMPLES", [
        "A first image: a 100 A cubic cell, 5x5x5 unit cells, every F = 100, on a "
        "256x256 detector 100 mm away:",
        ("", ["nbnumba -cell 100 100 100 90 90 90 -default_F 100 -N 5 \\",
              "    -detpixels 256 -distance 100 -seed 1"]),
        "Structure factors from a file, an orientation matrix, XDS geometry, a 0.5 degree "
        "oscillation from phi = 10 degrees in 5 steps, named outputs, no PGM:",
        ("", ["nbnumba -hkl P1.hkl -mat A.mat -xds -ORGX 512 -ORGY 512 \\",
              "    -distance 200 -pixel 0.172 -detpixels 1024 -phi 10 -osc 0.5 -phisteps 5 \\",
              "    -seed 7 -floatfile img_00001.bin -intfile img_00001.img \\",
              "    -noisefile noise_00001.img -nopgm"]),
    ]),
    ("SEE ALSO", [
        "nb-compare --help (run the C program and nbnumba on the same arguments and "
        "compare the images), nbnumba-series --help (rotation series). The user guide, "
        "the flag reference (flags.md), the parity notes and the architecture page are in "
        "the docs/ directory of the source tree.",
    ]),
]


def _roff(text):
    """Escape plain text for roff: backslashes, hyphens, and a leading dot or quote."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    if text.startswith((".", "'")):
        text = "\\&" + text
    return text


def _section_roff(paragraphs):
    lines = []
    for item in paragraphs:
        if isinstance(item, tuple):
            tag, text = item
            if tag:
                lines += [".TP", "\\fB%s\\fR" % _roff(tag), _roff(text)]
            else:  # a command line (list of lines): no filling, indented
                lines += [".IP", ".nf"] + [_roff(t) for t in text] + [".fi"]
        else:
            lines += [".PP", _roff(item)]
    return "\n".join(lines)


def _man_date():
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = (datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc) if epoch
            else datetime.datetime.now(datetime.timezone.utc))
    return when.strftime("%Y-%m-%d")


def man_page(parser=None):
    """The man page (roff text) of ``nbnumba``."""
    try:
        from argparse_manpage.manpage import Manpage
    except ImportError:  # pragma: no cover - depends on the environment
        raise SystemExit("nbnumba-manpage: argparse-manpage is needed: "
                         "pip install 'nbnumba[man]' (or argparse-manpage)") from None
    from nbnumba import __version__
    parser = parser or build_parser()
    page = Manpage(parser)
    page.description = SHORT_DESCRIPTION
    page.source = f"nbnumba {__version__}"
    page.manual = "nbnumba manual"
    page.date = _man_date()
    page.add_section("synopsis", "=", _SYNOPSIS)
    for heading, paragraphs in _SECTIONS:
        page.add_section(heading, "=", _section_roff(paragraphs))
    title, rest = str(page).split("\n", 1)
    # no hyphenation, ragged right: flag names must stay whole and copyable
    return "\n".join([title, ".nh", ".ad l", rest])


# ------------------------------------------------------------------------------ markdown


def _md_cell(text):
    return text.replace("|", "\\|")


def _md_code(text):
    return "`%s`" % _md_cell(text)


def flags_markdown(parser=None):
    """The flag reference (Markdown): one table per group, in the parser's order."""
    from nbnumba import __version__
    parser = parser or build_parser()
    formatter = parser._get_formatter()
    out = [
        "# nbnumba flag reference",
        "",
        "<!-- Generated by `python -m nbnumba_cli.manpage --markdown docs/flags.md` from the "
        "parser (nbnumba/flags.py). Do not edit by hand. -->",
        "",
        f"Every flag of `nbnumba` {__version__}, grouped as in `nbnumba -h` and the man page "
        "(`man ./docs/nbnumba.1`). Flags are matched exactly (no abbreviations, no substring "
        "matching); aliases are listed after the main name. Flags are applied in "
        "command-line order, so a later flag overrides an earlier one.",
        "",
        EPILOG,
        "",
    ]
    for group in parser._action_groups:
        actions = [a for a in group._group_actions if a.help != argparse.SUPPRESS]
        if not actions:
            continue
        out += [f"## {group.title}", "", "| flag | arguments | description |",
                "|---|---|---|"]
        for action in actions:
            names = action.option_strings
            if action.nargs == 0:
                args = ""
            else:
                args = _md_code(formatter._format_args(action, action.dest.upper()))
            flag = _md_code(names[0])
            if len(names) > 1:
                flag += " (also " + ", ".join(_md_code(n) for n in names[1:]) + ")"
            out.append(f"| {flag} | {args} | {_md_cell(action.help or '')} |")
        out.append("")
    return "\n".join(out)


# ----------------------------------------------------------------------------------- CLI


def _strip_date(text):
    return "\n".join(line for line in text.splitlines() if not line.startswith(".TH "))


def _write(path, text):
    if str(path) == "-":
        sys.stdout.write(text)
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="python -m nbnumba_cli.manpage",
        description="Generate the nbnumba man page and Markdown flag reference from the parser.")
    ap.add_argument("-o", "--output", metavar="FILE",
                    help="write the man page to FILE ('-' for stdout)")
    ap.add_argument("--markdown", metavar="FILE",
                    help="write the Markdown flag reference to FILE ('-' for stdout)")
    ap.add_argument("--check", action="store_true",
                    help=f"compare DOCS/{MAN_NAME} and DOCS/{FLAGS_NAME} with freshly generated "
                         "text (ignoring the date); exit 1 if stale")
    ap.add_argument("--docs", metavar="DOCS", default=str(DOCS),
                    help="the docs folder written by default and compared by --check "
                         "(default: docs, run from the repository root)")
    args = ap.parse_args(argv)
    man_file, flags_file = Path(args.docs) / MAN_NAME, Path(args.docs) / FLAGS_NAME
    if not (args.output or args.markdown or args.check):
        args.output, args.markdown = str(man_file), str(flags_file)
    if args.check:
        stale = []
        for path, text, norm in ((man_file, man_page(), _strip_date),
                                 (flags_file, flags_markdown(), lambda t: t)):
            if not path.exists() or norm(path.read_text(encoding="utf-8")) != norm(text):
                stale.append(str(path))
        if stale:
            sys.stderr.write("stale: %s (regenerate with: python -m nbnumba_cli.manpage)\n"
                             % ", ".join(stale))
            return 1
        return 0
    if args.output:
        _write(args.output, man_page())
    if args.markdown:
        _write(args.markdown, flags_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
