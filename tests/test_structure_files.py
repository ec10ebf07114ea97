"""Structure factors from MTZ, structure-factor mmCIF and coordinate models (gemmi).

The references are independent of nbnumba's readers: gemmi's own reading of the files,
a per-reflection P1 expansion with gemmi's ``Op.apply_to_hkl``, ``gemmi sfcalc`` (the
``gemmi`` program of the ``gemmi-program`` package, when installed) and gemmi's direct
summation over the atoms. Images are compared through the ``nbnumba`` command, against
the command reading the same P1 reflections from an HKL file. The test files are made by
``tests/data/structure_files/make_structure_files.py``.
"""
import math
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import nbnumba
from nbnumba.constants import RTD
from nbnumba.io import model_sf, reflections

from conftest import run_cli

DATA = Path(__file__).parent / "data" / "structure_files"
ROOT = Path(__file__).resolve().parent.parent

#: a small render: 48 x 48 pixels of 0.5 mm, 3 x 3 x 3 cells, at 60 mm (corners at d = 2 A)
RENDER = ["-N", "3", "-detpixels", "48", "-pixel", "0.5", "-distance", "60", "-lambda", "1",
          "-misset", "10", "20", "30", "-noprogress", "-nopgm", "-nonoise"]


@pytest.fixture(scope="module")
def gemmi():
    return pytest.importorskip("gemmi")


def gemmi_program():
    """The ``gemmi`` program (``pip install gemmi-program``), or None."""
    beside = Path(sys.executable).parent / "gemmi"
    return str(beside) if beside.exists() else shutil.which("gemmi")


# ---------------------------------------------------------------------- references

def reference_p1(gemmi, hkl, F, space_group):
    """{(h, k, l): F}: every reflection, its equivalents by every operation of the space
    group (gemmi's Op.apply_to_hkl, one at a time) and their Friedel mates."""
    found = {}
    for h, f in zip(hkl, F):
        for op in space_group.operations():
            e = op.apply_to_hkl([int(x) for x in h])
            for key in (tuple(e), tuple(-x for x in e)):
                assert found.get(key, f) == f, key
                found[key] = f
    return found


def mtz_reflections(gemmi, path, label):
    mtz = gemmi.read_mtz_file(str(path))
    column = mtz.column_with_label(label)
    values = np.array(column.array, dtype=float)
    if column.type == "J":
        values = np.sqrt(np.maximum(values, 0.0))
    keep = np.isfinite(values)
    return mtz.make_miller_array()[keep], values[keep], mtz.spacegroup, mtz.cell


def cif_reflections(gemmi, path, tag):
    block = gemmi.as_refln_blocks(gemmi.cif.read(str(path)))[0]
    values = np.array(block.make_float_array(tag), dtype=float)
    if "intensity" in tag:
        values = np.sqrt(np.maximum(values, 0.0))
    keep = np.isfinite(values)
    return block.make_miller_array()[keep], values[keep], block.spacegroup, block.cell


def write_hkl(path, table):
    """An HKL file of {(h, k, l): F}, F written with every digit (repr)."""
    path.write_text("".join("%d %d %d %r\n" % (h, k, l, float(f))
                            for (h, k, l), f in sorted(table.items())))


def cell_flags(cell):
    return ["-cell"] + ["%r" % v for v in (cell.a, cell.b, cell.c, cell.alpha, cell.beta,
                                            cell.gamma)]


def render(tmp_path, name, flags):
    """The float image (bytes) and stdout of ``nbnumba FLAGS`` run in its own directory."""
    where = tmp_path / name
    where.mkdir()
    run = run_cli(RENDER + flags + ["-floatfile", "float.bin", "-intfile", "int.img"], where)
    assert run.code == 0, run.err
    return (where / "float.bin").read_bytes(), run.out


# ----------------------------------------------------------------- P1 and images

FILES = [("p1.mtz", "FP"), ("p21.mtz", "FP"), ("p212121.mtz", "FC"), ("p43212.mtz", "IMEAN"),
         ("p21-sf.cif", "F_meas_au"), ("p43212-sf.cif.gz", "intensity_meas")]


@pytest.mark.parametrize("name,column", FILES)
def test_p1_reflections_are_the_files_expanded_by_gemmi(gemmi, name, column):
    path = DATA / name
    if name.endswith(".mtz"):
        hkl, F, group, cell = mtz_reflections(gemmi, path, column)
        sf = nbnumba.StructureFactors.from_mtz(path, column)
    else:
        hkl, F, group, cell = cif_reflections(gemmi, path, column)
        sf = nbnumba.StructureFactors.from_sf_cif(path, column)
    expected = reference_p1(gemmi, hkl, F, group)
    lo = np.array([sf.h_min, sf.k_min, sf.l_min])
    got = {}
    for index in zip(*np.nonzero(sf.grid)):
        got[tuple(int(x) for x in np.array(index) + lo)] = sf.grid[index]
    # every file reflection is nonzero except the weak intensities converted to F = 0
    assert {k: v for k, v in expected.items() if v} == got
    assert sf.count == len(expected)
    assert sf.space_group == group.xhm()
    assert sf.cell[:3] == (cell.a, cell.b, cell.c)
    assert sf.cell[3] == cell.alpha / RTD


@pytest.mark.parametrize("name,column", FILES)
def test_file_images_are_the_images_of_the_same_reflections_in_an_hkl_file(
        gemmi, tmp_path, name, column):
    """P1 (MTZ), P 1 21 1 (MTZ and mmCIF), P 21 21 21 and P 43 21 2 (MTZ, mmCIF.gz):
    bit-identical float images, the cell taken from the file."""
    path = DATA / name
    if name.endswith(".mtz"):
        hkl, F, group, cell = mtz_reflections(gemmi, path, column)
        flags = ["--mtz", str(path), "--mtz-column", column]
    else:
        hkl, F, group, cell = cif_reflections(gemmi, path, column)
        flags = ["--sf-cif", str(path), "--sf-cif-column", column]
    write_hkl(tmp_path / "p1.hkl", reference_p1(gemmi, hkl, F, group))
    from_file, out = render(tmp_path, "file", flags)
    from_hkl, _ = render(tmp_path, "hkl", ["-hkl", str(tmp_path / "p1.hkl")] + cell_flags(cell))
    assert from_file == from_hkl
    image = np.frombuffer(from_file, np.float32)
    assert np.count_nonzero(image > 1e-3 * image.max()) > 100
    assert "P1 structure factors from" in out and f"space group {group.xhm()}" in out
    assert f"(the cell of {path})" in out
    assert not (tmp_path / "file" / "Fdump.bin").exists()


# ------------------------------------------------------------------------ models

def model_table(sf):
    lo = np.array([sf.h_min, sf.k_min, sf.l_min])
    return {tuple(int(x) for x in np.array(i) + lo): sf.grid[i] for i in zip(*np.nonzero(sf.grid))}


def rms_relative(ours, reference):
    ours, reference = np.asarray(ours), np.asarray(reference)
    return math.sqrt(np.mean((ours - reference) ** 2) / np.mean(reference ** 2))


@pytest.mark.skipif(gemmi_program() is None, reason="needs the gemmi program "
                    "(pip install gemmi-program)")
@pytest.mark.parametrize("name,solvent", [("p1.cif", None), ("p21.pdb", None),
                                          ("p212121.cif", None), ("p43212.cif", (0.35, 46.0))])
def test_model_amplitudes_are_gemmi_sfcalcs(gemmi, tmp_path, name, solvent):
    """Within 0.5 % rms (relative) of ``gemmi sfcalc --dmin=2`` at every reflection it
    computes (d >= 2 A; the ones it leaves out are the systematic absences, F = 0 here)."""
    command = [gemmi_program(), "sfcalc", "--dmin=2", f"--to-mtz={tmp_path / 'fc.mtz'}"]
    if solvent:
        command += [f"--ksolv={solvent[0]}", f"--bsolv={solvent[1]}"]
    subprocess.run(command + [str(DATA / name)], check=True, capture_output=True)
    hkl, fc, group, _ = mtz_reflections(gemmi, tmp_path / "fc.mtz", "FC")
    expected = reference_p1(gemmi, hkl, fc, group)
    k_sol, b_sol = solvent or (0.0, 46.0)
    sf = nbnumba.StructureFactors.from_model(DATA / name, d_min=2.0, k_sol=k_sol, b_sol=b_sol)
    ours = model_table(sf)
    assert set(expected) <= set(ours) | {k for k, v in expected.items() if v < 1e-3}
    keys = sorted(expected)
    error = rms_relative([ours.get(k, 0.0) for k in keys], [expected[k] for k in keys])
    assert error < 0.005, error
    extra = set(ours) - set(expected)
    assert all(group.operations().is_systematically_absent(list(k)) for k in extra)


@pytest.mark.parametrize("name,b_add", [("p21.cif", 0.0), ("p212121.cif", 5.0)])
def test_model_amplitudes_are_the_direct_sums_over_the_atoms(gemmi, name, b_add):
    """The FFT route against gemmi's direct summation (every atom, its symmetry copies),
    at 400 P1 reflections from low to high resolution, of both Friedel signs."""
    sf = nbnumba.StructureFactors.from_model(DATA / name, d_min=2.0, b_add=b_add)
    structure = gemmi.read_structure(str(DATA / name))
    for residue in structure[0][0]:
        for atom in residue:
            atom.b_iso += b_add
            if atom.aniso.nonzero():
                u, a = b_add / (8 * math.pi ** 2), atom.aniso
                atom.aniso = gemmi.SMat33f(a.u11 + u, a.u22 + u, a.u33 + u, a.u12, a.u13, a.u23)
    table = model_table(sf)
    keys = sorted(table)
    picked = [keys[i] for i in np.random.default_rng(5).choice(len(keys), 400, replace=False)]
    calculator = gemmi.StructureFactorCalculatorX(structure.cell)
    exact = [abs(calculator.calculate_sf_from_model(structure[0], list(k))) for k in picked]
    error = rms_relative([table[k] for k in picked], exact)
    assert error < 0.005, error
    d = [structure.cell.calculate_d(list(k)) for k in keys]
    assert min(d) >= 2.0 - 1e-9 and max(d) > 10.0


def test_model_image_is_the_image_of_its_amplitudes_in_an_hkl_file(gemmi, tmp_path):
    found = model_sf.calculate(DATA / "p21.cif", 2.0)
    write_hkl(tmp_path / "model.hkl", dict(zip(map(tuple, found.hkl), found.F)))
    from_model, out = render(tmp_path, "model", ["--model", str(DATA / "p21.cif"),
                                                  "--d-min", "2"])
    cell = gemmi.read_structure(str(DATA / "p21.cif")).cell
    from_hkl, _ = render(tmp_path, "hkl", ["-hkl", str(tmp_path / "model.hkl")]
                         + cell_flags(cell))
    assert from_model == from_hkl
    assert "Unit Cell: 25 30 35 90 105 90 (the cell of " in out
    assert "computed %d P1 structure factors from model" % len(found.F) in out


def test_the_model_cell_is_used_from_python_too(gemmi):
    sf = nbnumba.StructureFactors.from_model(DATA / "p43212.cif", d_min=3.0)
    config = nbnumba.SimulationConfig()
    config.crystal.structure_factors = sf
    config.detector.fpixels = config.detector.spixels = 16
    setup = nbnumba.prepare(config)
    assert setup.lattice.cell[:3] == pytest.approx((32.0, 32.0, 45.0))
    structure = gemmi.read_structure(str(DATA / "p43212.cif"))   # a gemmi.Structure works
    again = nbnumba.StructureFactors.from_model(structure, d_min=3.0)
    assert np.array_equal(again.grid, sf.grid)
    assert structure[0].count_atom_sites() == 16   # and is left as it was


def test_series_renders_from_a_model(gemmi, tmp_path):
    from nbnumba_cli.series import main as series
    run = run_cli(RENDER + ["--model", str(DATA / "p212121.cif"), "--d-min", "2.5",
                            "--frames", "2", "--frame-osc", "1", "--template", "s/f_{:02d}"],
                  tmp_path, entry=series)
    assert run.code == 0, run.err
    assert "computed" in run.out and "(and its cell)" in run.out
    single, _ = render(tmp_path, "single", ["--model", str(DATA / "p212121.cif"), "--d-min",
                                            "2.5", "-phi", "1", "-osc", "1"])
    assert (tmp_path / "s" / "f_01.bin").read_bytes() == single


# --------------------------------------------------------------------- bad input

def _bad_files(gemmi, tmp_path):
    (tmp_path / "text.mtz").write_text("1 2 3 4\n")
    (tmp_path / "truncated.mtz").write_bytes((DATA / "p21.mtz").read_bytes()[:300])
    mtz = gemmi.read_mtz_file(str(DATA / "p1.mtz"))
    mtz.add_column("M/ISYM", "Y")
    mtz.write_to_file(str(tmp_path / "unmerged.mtz"))
    text = (DATA / "p21.cif").read_text()
    (tmp_path / "no_atoms.cif").write_text(text[:text.index("loop_\n_atom_site.")])
    (tmp_path / "no_cell.pdb").write_text("CRYST1    1.000    1.000    1.000  90.00  90.00  "
                                          "90.00 P 1           1\n" + "".join(
                                              line + "\n" for line in (DATA / "p21.pdb")
                                              .read_text().splitlines()
                                              if line.startswith(("ATOM", "HETATM"))))
    pdb = (DATA / "p21.pdb").read_text().replace("           C  ", "           Xx ", 1)
    (tmp_path / "unknown_element.pdb").write_text(pdb)
    (tmp_path / "cubic.mat").write_text("0.02 0 0\n0 0.02 0\n0 0 0.02\n")
    (tmp_path / "truncated.cif.gz").write_bytes((DATA / "p43212-sf.cif.gz").read_bytes()[:500])
    os.mkfifo(tmp_path / "fifo.mtz")


BAD = [
    (["--mtz", "text.mtz"], "text.mtz is not an MTZ file"),
    (["--mtz", "truncated.mtz"], "cannot read MTZ file truncated.mtz"),
    (["--mtz", "unmerged.mtz"], "unmerged.mtz is unmerged"),
    (["--mtz", "fifo.mtz"], "it is a FIFO"),
    (["--mtz", "."], "it is a directory"),
    (["--mtz", "missing.mtz"], "No such file"),
    (["--mtz", "{data}/p212121.mtz"], "2 amplitude columns (FP, FC): choose one"),
    (["--mtz", "{data}/p21.mtz", "--mtz-column", "SIGFP"], "column SIGFP holds standard dev"),
    (["--mtz", "{data}/p21.mtz", "--mtz-column", "F"], "has no column 'F' (amplitudes: FP; "
                                                        "intensities: IMEAN)"),
    (["--mtz", "{data}/p21.mtz", "-cell", "25", "30", "36", "90", "105", "90"],
     "the cell given (-cell) (25 30 36 A, 90 105 90 deg) differs from the cell of MTZ file"),
    (["--mtz", "{data}/p21.mtz", "-mat", "cubic.mat"], "the cell of the orientation matrix "
                                                        "(-mat) (50 50 50 A"),
    (["--sf-cif", "{data}/p21.cif"], "p21.cif is a coordinate model, not a structure-factor"),
    (["--sf-cif", "{data}/p21.mtz"], "p21.mtz is an MTZ file, not a structure-factor mmCIF"),
    (["--sf-cif", "truncated.cif.gz"], "truncated.cif.gz is a truncated gzip file"),
    (["--sf-cif", "{data}/p21-sf.cif", "--sf-cif-column", "F_meas_sigma_au"],
     "_refln.F_meas_sigma_au holds neither amplitudes"),
    (["--model", "no_atoms.cif", "--d-min", "2"], "no_atoms.cif holds no atoms"),
    (["--model", "no_cell.pdb", "--d-min", "2"], "no_cell.pdb has no crystal unit cell"),
    (["--model", "unknown_element.pdb", "--d-min", "2"], "has no known element"),
    (["--model", "{data}/p21-sf.cif", "--d-min", "2"], "is a structure-factor mmCIF file, not "
                                                       "a model: give it as --sf-cif"),
    (["--model", "{data}/p21.cif"], "--model needs --d-min"),
    (["--model", "{data}/p21.cif", "--d-min", "0"], "argument --d-min: 0 Angstrom"),
    (["--model", "{data}/p21.cif", "--d-min", "2", "--b-add", "-50"], "after b_add -50: a B "
                                                                      "must not be negative"),
    (["--d-min", "2", "-cell", "30", "-default_F", "1"], "--d-min is an option of --model"),
    (["--mtz", "{data}/p21.mtz", "--model", "{data}/p21.cif", "--d-min", "2"],
     "give one source of structure factors, not --mtz and --model"),
    (["-hkl", "{data}/p21.mtz", "-cell", "30"], "is an MTZ file: give it as --mtz"),
    (["-hkl", "{data}/p21.cif", "-cell", "30"], "is a coordinate model (mmCIF): give it as "
                                                "--model"),
    (["-hkl", "{data}/p21.pdb", "-cell", "30"], "is a coordinate model (PDB)"),
    (["-hkl", "{data}/p21-sf.cif", "-cell", "30"], "is a structure-factor mmCIF file: give "
                                                   "it as --sf-cif"),
]


@pytest.mark.parametrize("flags,message", BAD, ids=[" ".join(f)[:60] for f, _ in BAD])
def test_bad_files_are_one_line(gemmi, tmp_path, flags, message):
    _bad_files(gemmi, tmp_path)
    flags = [f.replace("{data}", str(DATA)) for f in flags]
    run = run_cli(["-detpixels", "8", "-noprogress"] + flags, tmp_path)
    assert run.code == 9
    assert run.err.count("\n") == 1 and run.err.startswith("nbnumba: error: "), run.err
    assert message in run.err, run.err
    assert not (tmp_path / "floatimage.bin").exists()


def test_library_errors_are_nbnumba_errors(gemmi, tmp_path):
    S = nbnumba.StructureFactors
    with pytest.raises(nbnumba.InputFileError, match="is not an MTZ file"):
        S.from_mtz(DATA / "p21.cif")
    with pytest.raises(nbnumba.ConfigError, match=r"d_min \[Angstrom\]"):
        S.from_model(DATA / "p21.cif", d_min="2")
    with pytest.raises(nbnumba.ConfigError, match="k_sol"):
        S.from_model(DATA / "p21.cif", d_min=2.0, k_sol=-1.0)
    with pytest.raises(nbnumba.ConfigError, match="file name or a gemmi.Structure"):
        S.from_model(42, d_min=2.0)
    with pytest.raises(nbnumba.InputFileError, match="reflections 1 0 0 .* symmetry "
                       "equivalents in space group P 1 21 1"):
        mtz = gemmi.read_mtz_file(str(DATA / "p21.mtz"))
        data = np.array(mtz.array)
        data[:2, :3] = [[1, 0, 0], [-1, 0, 0]]     # Friedel mates with different F
        mtz.set_data(data)
        mtz.write_to_file(str(tmp_path / "clash.mtz"))
        S.from_mtz(tmp_path / "clash.mtz", "FP")


def test_memory_is_checked_before_the_density_grid_and_the_expansion(gemmi, monkeypatch):
    from nbnumba import memory
    monkeypatch.setattr(memory, "available_bytes", lambda: 100_000)
    with pytest.raises(nbnumba.InputFileError, match="the density grid of .*p21.cif at d_min "
                       "1 A needs .* of memory, more than the 100 kB available; use a larger "
                       "d_min"):
        nbnumba.StructureFactors.from_model(DATA / "p21.cif", d_min=1.0)
    with pytest.raises(nbnumba.InputFileError, match="expanding the 1049 reflections of MTZ "
                       "file .*p21.mtz to P1"):
        nbnumba.StructureFactors.from_mtz(DATA / "p21.mtz")


def test_config_from_args_reads_the_files_too(gemmi):
    config, _ = nbnumba.config_from_args(["--sf-cif", str(DATA / "p21-sf.cif"), "-N", "2"])
    sf = config.crystal.structure_factors
    assert config.crystal.cell == sf.cell and sf.space_group == "P 1 21 1"
    assert sf.source.startswith("structure-factor mmCIF file")


# ----------------------------------------------------------------- without gemmi

def _without_gemmi(code, cwd):
    script = "import sys\nsys.modules['gemmi'] = None\n" + textwrap.dedent(code)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "tests"))
    return subprocess.run([sys.executable, "-c", script], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_without_gemmi_the_flags_and_functions_refuse_with_the_install_command(tmp_path):
    (tmp_path / "tiny.hkl").write_text("1 0 0 10\n")
    run = _without_gemmi(f"""
        import nbnumba, pytest
        assert "gemmi" not in [m for m in sys.modules if sys.modules[m] is not None]
        for call in (lambda: nbnumba.StructureFactors.from_mtz({str(DATA / 'p21.mtz')!r}),
                     lambda: nbnumba.StructureFactors.from_sf_cif("x.cif"),
                     lambda: nbnumba.StructureFactors.from_model("x.cif", 2.0)):
            with pytest.raises(nbnumba.ConfigError, match=r"needs gemmi, which is not "
                               r"installed: pip install 'nbnumba\\[models\\]'"):
                call()
        from nbnumba_cli.main import main
        for flags in (["--mtz", "x.mtz"], ["--sf-cif", "x.cif"], ["--model", "x", "--d-min", "2"]):
            assert main(flags + ["-cell", "30", "-default_F", "1"]) == 9
        assert main(["-hkl", "tiny.hkl", "-cell", "30", "-detpixels", "8", "-noprogress"]) == 0
        """, tmp_path)
    assert run.returncode == 0, run.stderr
    lines = run.stderr.splitlines()
    for flag in ("--mtz", "--sf-cif", "--model"):
        assert (f"nbnumba: error: {flag} needs gemmi, which is not installed: "
                "pip install 'nbnumba[models]'") in lines, run.stderr
    assert (tmp_path / "floatimage.bin").exists()


def test_importing_nbnumba_does_not_import_gemmi(tmp_path):
    run = subprocess.run([sys.executable, "-c", "import sys, nbnumba, nbnumba_cli.main; "
                          "sys.exit('gemmi' in sys.modules)"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_install_command_names_an_extra_that_installs_gemmi():
    import tomllib
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert reflections.INSTALL == "pip install 'nbnumba[models]'"
    assert any(d.startswith("gemmi") for d in extras["models"])
