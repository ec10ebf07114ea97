"""Make the small crystallographic files of this folder (see README.md): hand-made
few-atom models in four space groups, MTZ files of amplitudes computed from them, and
structure-factor mmCIF files converted from those MTZ files, all with gemmi.

Run from anywhere (needs gemmi): ``python tests/data/structure_files/make_structure_files.py``.
The random numbers are seeded, so the files come out the same each time (up to the gemmi
version named in their headers). ``examples/model_P212121.cif`` (the user guide's
recipe) is a copy of ``p212121.cif``.
"""
import gzip
import math
import pathlib
import shutil

import gemmi
import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
EXAMPLES = HERE.parent.parent.parent / "examples"

#: name -> (space group, cell (A, degrees), atoms, seed)
MODELS = {
    "p1": ("P 1", (18.0, 20.0, 22.0, 80.0, 95.0, 100.0), 14, 1),
    "p21": ("P 1 21 1", (25.0, 30.0, 35.0, 90.0, 105.0, 90.0), 18, 2),
    "p212121": ("P 21 21 21", (30.0, 35.0, 40.0, 90.0, 90.0, 90.0), 20, 3),
    "p43212": ("P 43 21 2", (32.0, 32.0, 45.0, 90.0, 90.0, 90.0), 16, 4),
}
ELEMENTS = ("C", "C", "C", "C", "N", "O", "O", "S")
MIN_DISTANCE = 1.4   # Angstrom, between any two atoms and their symmetry copies
D_MIN_MTZ = 3.0      # resolution of the MTZ and structure-factor mmCIF files


def make_model(name, symbol, cell, count, seed):
    """A model of ``count`` atoms at random positions at least MIN_DISTANCE apart (with
    every symmetry copy), B 10 to 30 A^2; the P 21 21 21 one also has a hydrogen, an atom
    at half occupancy and one with anisotropic U."""
    rng = np.random.default_rng(seed)
    structure = gemmi.Structure()
    structure.cell = gemmi.UnitCell(*cell)
    structure.spacegroup_hm = symbol
    ops = gemmi.SpaceGroup(symbol).operations()
    placed = []
    chain = gemmi.Chain("A")
    while sum(1 for _ in chain) < count:
        fractional = rng.random(3)
        copies = [np.array(op.apply_to_xyz(list(fractional))) for op in ops]
        if not _far_enough(structure.cell, copies, placed):
            continue
        placed.extend(copies)
        index = sum(1 for _ in chain) + 1
        element = ELEMENTS[int(rng.integers(len(ELEMENTS)))]
        chain.add_residue(_residue(structure.cell, index, element, fractional,
                                   10.0 + 20.0 * rng.random()))
    if name == "p212121":
        _specials(chain)
    model = gemmi.Model("1")
    model.add_chain(chain)
    structure.add_model(model)
    structure.setup_entities()
    return structure


def _far_enough(cell, copies, placed):
    """Whether the new atom's copies are MIN_DISTANCE from every atom placed and from
    each other (no atom near a special position)."""
    pairs = [(a, b) for a in copies for b in placed]
    pairs += [(a, b) for i, a in enumerate(copies) for b in copies[i + 1:]]
    for a, b in pairs:
        delta = a - b
        delta -= np.round(delta)
        if cell.orthogonalize(gemmi.Fractional(*delta)).length() < MIN_DISTANCE:
            return False
    return True


def _residue(cell, index, element, fractional, b_iso):
    residue = gemmi.Residue()
    residue.name = "UNL"
    residue.seqid = gemmi.SeqId(index, " ")
    atom = gemmi.Atom()
    atom.name = f"{element}{index}"
    atom.element = gemmi.Element(element)
    atom.pos = cell.orthogonalize(gemmi.Fractional(*fractional))
    atom.b_iso = b_iso
    atom.occ = 1.0
    residue.add_atom(atom)
    return residue


def _specials(chain):
    residues = list(chain)
    hydrogen = gemmi.Atom()
    hydrogen.name = "H1"
    hydrogen.element = gemmi.Element("H")
    first = residues[0][0]
    hydrogen.pos = gemmi.Position(first.pos.x + 1.0, first.pos.y, first.pos.z)
    hydrogen.b_iso = first.b_iso
    hydrogen.occ = 1.0
    chain[0].add_atom(hydrogen)
    chain[1][0].occ = 0.5
    atom = chain[2][0]
    u = atom.b_iso / (8 * math.pi ** 2)
    atom.aniso = gemmi.SMat33f(1.3 * u, 0.8 * u, 0.9 * u, 0.1 * u, 0.0, -0.05 * u)


def make_mtz(structure, columns, seed, missing=0):
    """An MTZ file of the model's amplitudes at d >= D_MIN_MTZ (asymmetric unit, direct
    summation): columns from 'FP' (5 % noise), 'SIGFP', 'FC' (exact), 'IMEAN' (FP^2,
    some weak ones negative), 'SIGIMEAN', 'FreeR_flag'; ``missing`` FP values NaN."""
    rng = np.random.default_rng(seed)
    group = structure.find_spacegroup()
    hkl = np.array(gemmi.make_miller_array(structure.cell, group, D_MIN_MTZ, 0.0),
                   dtype=np.int32)
    calculator = gemmi.StructureFactorCalculatorX(structure.cell)
    fc = np.array([abs(calculator.calculate_sf_from_model(structure[0], [int(x) for x in h]))
                   for h in hkl])
    fp = fc * (1.0 + 0.05 * rng.standard_normal(len(fc)))
    fp = np.abs(fp)
    if missing:
        fp[rng.choice(len(fp), missing, replace=False)] = np.nan
    values = {"FP": ("F", fp), "SIGFP": ("Q", 0.05 * fc + 0.1), "FC": ("F", fc),
              "IMEAN": ("J", fp ** 2 - 0.02 * fc.max() ** 2 * (fp < 0.1 * fc.max())),
              "SIGIMEAN": ("Q", 0.1 * fc ** 2 + 1.0),
              "FreeR_flag": ("I", rng.integers(0, 20, len(fc)).astype(float))}
    mtz = gemmi.Mtz(with_base=True)
    mtz.spacegroup = group
    mtz.set_cell_for_all(structure.cell)
    mtz.add_dataset("simulated").wavelength = 1.0
    for label in columns:
        mtz.add_column(label, values[label][0])
    data = np.column_stack([hkl.astype(float)] + [values[label][1] for label in columns])
    mtz.set_data(data.astype(np.float32))
    mtz.history = ["amplitudes of a hand-made model, nbnumba test data"]
    return mtz


def write_sf_cif(mtz, path, compress=False):
    """The MTZ file as a structure-factor mmCIF file (gemmi's mtz2cif)."""
    converter = gemmi.MtzToCif()
    converter.with_comments = False
    converter.with_history = False
    text = converter.write_cif_to_string(mtz)
    if compress:
        with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                                    filename="") as handle:
            handle.write(text.encode())
    else:
        path.write_text(text)


def main():
    structures = {}
    for name, (symbol, cell, count, seed) in MODELS.items():
        structure = make_model(name, symbol, cell, count, seed)
        structures[name] = structure
        structure.make_mmcif_document().write_file(str(HERE / f"{name}.cif"))
    structures["p21"].write_pdb(str(HERE / "p21.pdb"))
    make_mtz(structures["p1"], ["FP", "SIGFP"], 11).write_to_file(str(HERE / "p1.mtz"))
    p21 = make_mtz(structures["p21"], ["FP", "SIGFP", "IMEAN", "SIGIMEAN", "FreeR_flag"], 12,
                   missing=5)
    p21.write_to_file(str(HERE / "p21.mtz"))
    make_mtz(structures["p212121"], ["FP", "SIGFP", "FC", "FreeR_flag"], 13).write_to_file(
        str(HERE / "p212121.mtz"))
    p43212 = make_mtz(structures["p43212"], ["IMEAN", "SIGIMEAN"], 14)
    p43212.write_to_file(str(HERE / "p43212.mtz"))
    write_sf_cif(p21, HERE / "p21-sf.cif")
    write_sf_cif(p43212, HERE / "p43212-sf.cif.gz", compress=True)
    shutil.copy(HERE / "p212121.cif", EXAMPLES / "model_P212121.cif")


if __name__ == "__main__":
    main()
