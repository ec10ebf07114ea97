"""The man page and the Markdown flag reference are generated from the parser and list
every flag; the shipped copies in docs/ are up to date and packaged."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from nbnumba_cli import manpage
from nbnumba.flags import FLAGS, GROUPS, all_names
from nbnumba_cli.parse import build_parser

ROOT = Path(__file__).resolve().parent.parent

import argparse_manpage  # noqa: E402,F401  - required (the 'man' extra): fail, never skip


@pytest.fixture(scope="module")
def page():
    return manpage.man_page()


@pytest.fixture(scope="module")
def markdown():
    return manpage.flags_markdown()


def _roff_name(name):
    return "\\fB" + name.replace("-", "\\-") + "\\fR"


#: a flag as it appears in a text: -cell, -N, --mtz-column
FLAG_WORD = re.compile(r"(?<![\w-])-{1,2}\w(?:[\w-]*\w)?")


def test_help_lists_every_flag():
    text = build_parser().format_help()
    words = set(FLAG_WORD.findall(text))
    missing = [n for n in all_names() if n not in words]
    assert not missing


def test_man_page_lists_every_flag_with_its_help(page):
    missing = [n for n in all_names() if _roff_name(n) not in page]
    assert not missing, f"flags missing from the man page: {missing}"
    for f in FLAGS:  # the help text (units, defaults) of every flag is there too
        assert manpage._roff(f.help) in page.replace("\n", " "), f.names[0]
    assert _roff_name("--version") in page


def test_man_page_groups_and_sections(page):
    sections = re.findall(r"^\.SH (.*)$", page, flags=re.M)
    for _, title in GROUPS:
        assert title.upper() in sections
    for name in ("NAME", "SYNOPSIS", "DESCRIPTION", "EXIT STATUS", "FILES", "ENVIRONMENT",
                 "EXAMPLES", "SEE ALSO"):
        assert name in sections
    order = [sections.index(t.upper()) for _, t in GROUPS]
    assert order == sorted(order), "groups must appear in the flag table's order"
    assert page.startswith('.TH NBNUMBA "1" ')


def test_man_page_renders_with_groff(page):
    groff = shutil.which("groff")
    if groff is None:  # rendering is checked where groff exists; the text checks above always run
        return
    run = subprocess.run([groff, "-man", "-Tascii", "-P-cbou", "-ww"], input=page,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "warning" not in run.stderr.lower(), run.stderr
    words = set(FLAG_WORD.findall(run.stdout))
    missing = [n for n in all_names() if n not in words]
    assert not missing, f"flags not in the rendered page: {missing}"


def test_man_page_date_is_reproducible(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert manpage.man_page().splitlines()[0].split('"')[3] == "2023\\-11\\-14"


def test_markdown_lists_every_flag(markdown):
    for name in all_names():
        assert f"`{name}`" in markdown, name
    for _, title in GROUPS:
        assert f"## {title}" in markdown
    for line in markdown.splitlines():
        if line.startswith("| `"):
            # 3 columns: escaped pipes inside cells must not add columns
            assert len(re.findall(r"(?<!\\)\|", line)) == 4, line


def test_build_command_writes_both_files(tmp_path):
    man, md = tmp_path / "man" / "nbnumba.1", tmp_path / "flags.md"
    assert manpage.main(["-o", str(man), "--markdown", str(md)]) == 0
    assert manpage._strip_date(man.read_text()) == manpage._strip_date(manpage.man_page())
    assert md.read_text() == manpage.flags_markdown()


def test_shipped_files_are_current():
    """docs/nbnumba.1 and docs/flags.md match the parser (regenerate with
    ``python -m nbnumba_cli.manpage`` after changing nbnumba/flags.py)."""
    assert manpage.main(["--check", "--docs", str(ROOT / "docs")]) == 0


def test_man_page_is_packaged():
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'"share/man/man1" = \[[^\]]*"docs/nbnumba\.1"', text)
    assert (ROOT / "docs" / "nbnumba.1").is_file()
