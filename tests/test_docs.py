"""Every code block of the documentation runs as written.

The fenced blocks of README.md and docs/*.md are sorted by their tag:

* ``sh`` / ``bash`` and ``python`` blocks are code: they are run, in the order of their
  page, in one scratch directory per page (so a block may read the files an earlier block
  of the same page wrote, as a reader following the page would). The scratch directory
  holds a copy of ``examples/`` and ``pyproject.toml`` (the blocks are written to run in a
  source checkout) and, under the names the docs use for "your files", ``A.mat`` and
  ``P1.hkl`` (copies of ``examples/A_cubic.mat`` and ``examples/P1_grid.hkl``). ``pip`` is
  replaced by a check that the command installs this checkout with extras it defines.
  ``sh`` blocks run under ``bash -e``; ``python`` blocks run as scripts (``python
  block.py``), so multiprocessing examples need their ``__main__`` guard.
* a code block that needs what a plain machine lacks (the C program, a GPU, XDS, a
  cluster) is preceded by ``<!-- not run: needs ... -->``: it is listed and counted, not
  run;
* a code block that needs DIALS is preceded by ``<!-- needs: DIALS_PY -->``: it runs
  when the environment variable ``DIALS_PY`` names the Python of a DIALS installation
  (``sh`` blocks with that Python's directory, where the ``dials.*`` commands are, first
  on ``PATH``; ``python`` blocks with that Python), in ``test_blocks_needing_dials_run``,
  which runs the page's blocks in order up to its last such block; without
  ``DIALS_PY`` that test is skipped and the blocks are counted as skipped. nbnumba's
  dxtbx format class is on their PYTHONPATH (installed by DIALS' pip into a directory of
  the test's, see ``dials_plugin.py``), as the user guide installs it in DIALS' Python;
* ``text`` or untagged blocks show output or syntax and are not code.

Any other tag fails the inventory test, so that every block is classified on purpose.
Run ``python tests/test_docs.py`` for the inventory.
"""
import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
CODE_TAGS = {"sh": "sh", "bash": "sh", "python": "python"}
TEXT_TAGS = {"", "text"}
NOT_RUN = re.compile(r"^\s*<!--\s*not run:\s*(?P<reason>.*?)\s*-->\s*$")
NEEDS = re.compile(r"^\s*<!--\s*needs:\s*(?P<variable>[A-Za-z_]+)\s*-->\s*$")
#: the programs a block may need, by the environment variable that names their Python
NEEDED_PYTHONS = {"DIALS_PY": "DIALS"}
NEEDS_TIMEOUT = 900  # seconds: DIALS blocks process a sweep
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<tag>[^`\s]*)\s*$")
BLOCK_TIMEOUT = 180  # seconds; the blocks are small, this only stops a hang
YOUR_FILES = {"A.mat": "examples/A_cubic.mat", "P1.hkl": "examples/P1_grid.hkl"}


@dataclass
class Block:
    page: Path
    line: int         #: 1-based line of the opening fence
    tag: str
    code: str
    not_run: str      #: the reason, or "" for a block that runs
    needs: str = ""   #: the environment variable naming the Python it needs, or ""

    @property
    def where(self):
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page):
    """The fenced blocks of a Markdown page, with their not-run reasons."""
    lines = page.read_text().split("\n")
    found = []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        indent = len(fence.group("indent"))
        end = i + 1
        while end < len(lines) and not lines[end].strip().startswith("```"):
            end += 1
        assert end < len(lines), f"{page}:{i + 1}: unclosed code block"
        previous = next((line for line in reversed(lines[:i]) if line.strip()), "")
        mark = NOT_RUN.match(previous)
        needs = NEEDS.match(previous)
        code = textwrap.dedent("\n".join(line[indent:] if line[:indent].isspace() else line
                                         for line in lines[i + 1:end]))
        found.append(Block(page, i + 1, fence.group("tag"), code + "\n",
                           mark.group("reason") if mark else "",
                           needs.group("variable") if needs else ""))
        i = end + 1
    return found


def inventory():
    return [block for page in PAGES for block in blocks(page)]


PIP_STUB = '''\
"""Stand-in for pip in the docs' blocks: checks the install command, installs nothing."""
import re, sys, tomllib
args = sys.argv[1:]
assert args[:1] == ["install"], f"docs run pip {args}, expected pip install"
extras = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]
for target in (a for a in args[1:] if not a.startswith("-")):
    match = re.fullmatch(r"\\.(?:\\[([a-z,]+)\\])?", target)
    assert match, f"pip install {target}: the docs install the checkout ('.' or '.[extra]')"
    for extra in filter(None, (match.group(1) or "").split(",")):
        assert extra in extras, f"pip install {target}: no extra {extra!r} in pyproject.toml"
'''


def scratch_directory(tmp_path):
    """A directory that looks like a source checkout with the docs' input files."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for name, source in YOUR_FILES.items():
        shutil.copy(ROOT / source, tmp_path / name)
    stubs = tmp_path / ".stubs"
    stubs.mkdir()
    pip = stubs / "pip"
    pip.write_text(f"#!{sys.executable}\n" + PIP_STUB)
    pip.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(stubs), str(Path(sys.executable).parent),
                                   env.get("PATH", "")])
    env.pop("PYTHONPATH", None)
    return env


def run_block(block, directory, env, number, plugin=None):
    python, timeout = sys.executable, BLOCK_TIMEOUT
    if block.needs:
        python, timeout = os.environ[block.needs], NEEDS_TIMEOUT
        env = dict(env, PATH=os.pathsep.join([str(Path(python).parent), env["PATH"]]))
        if plugin:
            env["PYTHONPATH"] = plugin
    if CODE_TAGS[block.tag] == "python":
        script = directory / f"doc_block_{number}.py"
        script.write_text(block.code)
        command = [python, script.name]
    else:
        command = ["bash", "-e", "-o", "pipefail", "-c", block.code]
    run = subprocess.run(command, cwd=directory, env=env, capture_output=True, text=True,
                         timeout=timeout)
    assert run.returncode == 0, (f"{block.where}: exit {run.returncode}\n{block.code}\n"
                                 f"stdout: {run.stdout[-2000:]}\nstderr: {run.stderr[-3000:]}")


def test_every_block_is_classified():
    """Code is tagged sh/bash/python, output and syntax text/untagged; only code can be
    marked not run, and a mark says why."""
    for block in inventory():
        assert block.tag in CODE_TAGS or block.tag in TEXT_TAGS, (
            f"{block.where}: tag {block.tag!r}: use sh or python for code, text for output")
        if block.tag in CODE_TAGS and not block.not_run:
            # runs of the suite (and readers) in parallel must not share files
            assert not re.search(r"(^|[\s='\"])/tmp/", block.code), (
                f"{block.where}: a block that runs writes below the current directory, "
                "not /tmp")
        if block.not_run:
            assert block.tag in CODE_TAGS, f"{block.where}: 'not run' on a block that is not code"
            assert block.not_run.startswith(("needs ", "is ")), (
                f"{block.where}: say what the block needs: <!-- not run: needs ... -->")
        if block.needs:
            assert block.tag in CODE_TAGS, f"{block.where}: 'needs' on a block that is not code"
            assert block.needs in NEEDED_PYTHONS, (
                f"{block.where}: needs {block.needs}: known are {sorted(NEEDED_PYTHONS)}")


def _counts(code):
    """(run here, needing a program: {variable: [blocks]}, not run) of code blocks."""
    needing = {}
    for block in code:
        if block.needs:
            needing.setdefault(block.needs, []).append(block)
    plain = [b for b in code if not b.not_run and not b.needs]
    return plain, needing, [b for b in code if b.not_run]


def test_not_run_blocks_are_listed():
    """The blocks not run, with their reasons, and the blocks that need a program
    (printed, counted)."""
    code = [block for block in inventory() if block.tag in CODE_TAGS]
    plain, needing, skipped = _counts(code)
    assert len(code) > len(skipped) > 0
    assert all(block.not_run for block in skipped)
    print(f"\ndocs code blocks: {len(plain)} run, {len(skipped)} not run:")
    for variable, needed in sorted(needing.items()):
        state = "set: they run" if os.environ.get(variable) else "not set: skipped"
        print(f"  {len(needed)} need {NEEDED_PYTHONS[variable]} ({variable} {state})")
    for block in skipped:
        print(f"  {block.where}: {block.not_run}")


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_code_blocks_run(page, tmp_path):
    env = scratch_directory(tmp_path)
    for number, block in enumerate(blocks(page)):
        if block.tag in CODE_TAGS and not block.not_run and not block.needs:
            run_block(block, tmp_path, env, number)


NEEDING_PAGES = [page for page in PAGES if any(block.needs for block in blocks(page))]


@pytest.mark.parametrize("page", NEEDING_PAGES, ids=lambda page: page.name)
def test_blocks_needing_dials_run(page, tmp_path):
    """The page's blocks in order up to its last block that needs DIALS, those included
    (skipped without DIALS_PY)."""
    found = blocks(page)
    needed = [block for block in found if block.needs]
    missing = sorted({block.needs for block in needed if not os.environ.get(block.needs)})
    if missing:
        pytest.skip(f"{len(needed)} blocks of {page.name} need {', '.join(missing)}")
    import dials_plugin
    plugin = dials_plugin.install(os.environ["DIALS_PY"], tmp_path / ".dxtbx")
    env = scratch_directory(tmp_path)
    last = max(number for number, block in enumerate(found) if block.needs)
    for number, block in enumerate(found[:last + 1]):
        if block.tag in CODE_TAGS and not block.not_run:
            run_block(block, tmp_path, env, number, plugin)
    print(f"\n{page.name}: {len(needed)} blocks that need DIALS ran")


if __name__ == "__main__":
    every = inventory()
    for block in every:
        kind = ("not run: " + block.not_run if block.not_run
                else "needs " + block.needs if block.needs
                else "run" if block.tag in CODE_TAGS else "not code")
        print(f"{block.where:28s} [{block.tag or '-'}] {kind}")
    code = [block for block in every if block.tag in CODE_TAGS]
    plain, needing, skipped = _counts(code)
    print(f"{len(code)} code blocks: {len(plain)} run, "
          + "".join(f"{len(b)} need {v}, " for v, b in sorted(needing.items()))
          + f"{len(skipped)} not run; {len(every) - len(code)} text blocks")


def test_the_api_name_table_lists_every_exported_name():
    """docs/api.md's table of names is nbnumba.__all__, no more and no less."""
    import nbnumba
    text = (ROOT / "docs" / "api.md").read_text()
    start = text.index("| name | what it is |")
    table = text[start:text.index("\n\n", start)].splitlines()[2:]
    listed = set()
    for row in table:
        listed |= set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", row.split("|")[1]))
    assert listed == set(nbnumba.__all__), (
        f"missing from docs/api.md: {sorted(set(nbnumba.__all__) - listed)}; "
        f"not exported: {sorted(listed - set(nbnumba.__all__))}")
