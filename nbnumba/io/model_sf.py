"""Structure factors of a coordinate model (mmCIF or PDB, through gemmi), to P1.

The amplitudes are those ``gemmi sfcalc --dmin=D`` computes, by the same route: the
model's electron density from X-ray form factors (International Tables vol. C, 4.3.2,
"IT92"; atomic charges ignored; no anomalous f'/f''), sampled with gemmi's
``DensityCalculatorX`` (grid spacing d_min / 3, Refmac's blurring B, atomic radius where
the density falls below 1e-5 e/A^3), the space group's copies added, and Fourier
transformed; every reflection with d >= d_min is kept. What is taken from the model:

* the **first model** of the file (an NMR ensemble gives its first member), with its
  strict NCS copies (``MTRIX``/``struct_ncs_oper``) generated when the file lists them
  as not yet applied;
* every atom as it is: hydrogens, alternative conformations and waters included, with
  its occupancy and its B (anisotropic U where the file gives it); ``b_add`` is added to
  every atom's B (and to the diagonal of its anisotropic B);
* no bulk solvent by default (the amplitudes of the atoms alone, as ``sfcalc`` without
  ``--ksolv``); with ``k_sol`` > 0 a flat solvent model is added, F = F_atoms + k_sol
  exp(-B_sol s^2/4) F_mask, with gemmi's solvent mask (van der Waals radii, probe 1.0 A,
  shrink 1.1 A) on the same grid, as ``sfcalc --ksolv=K --bsolv=B`` computes it
  (typical values: k_sol 0.35 e/A^3, B_sol 46 A^2).

Systematically absent reflections are stored with F = 0 (the model's exact value); F(000)
is left out (it would put the direct beam on the image; it gets ``default_F`` like any
reflection beyond d_min).
"""
import math
import numbers

import numpy as np

from .. import memory
from ..errors import ConfigError, InputFileError
from . import reflections
from .reflections import Reflections

#: the grid of the density: d_min / (2 RATE), sfcalc's default
RATE = 1.5

#: bytes per point of the density grid (float32 density, its complex half transform,
#: the solvent mask and its transform, with margin)
GRID_BYTES_PER_POINT = 32

#: largest density grid (points)
MAX_GRID_POINTS = 1 << 31

#: smallest d_min accepted (Angstrom): below it form factors are extrapolated
MIN_D_MIN = 0.3

#: van der Waals radii, probe and shrink radius of the solvent mask (sfcalc's defaults)
SOLVENT_PROBE, SOLVENT_SHRINK = 1.0, 1.1


def calculate(model, d_min, b_add=0.0, k_sol=0.0, b_sol=46.0, what="model"):
    """:class:`Reflections` (P1, d >= d_min) computed from a coordinate model.

    model: a path (mmCIF or PDB, gzip-compressed or not) or a ``gemmi.Structure`` (not
    changed); d_min: resolution limit, Angstrom; b_add: added to every atom's B,
    Angstrom^2; k_sol: bulk-solvent density, e/Angstrom^3 (0: none); b_sol: its B,
    Angstrom^2. See the module docstring for what is computed.
    """
    gemmi = reflections.require_gemmi("StructureFactors.from_model")
    _check_number("d_min", "Angstrom", d_min)
    if d_min < MIN_D_MIN:
        raise ConfigError(f"d_min [Angstrom] = {d_min:g}: must be at least {MIN_D_MIN:g} "
                          "Angstrom (X-ray form factors are tabulated to 0.25 Angstrom)")
    for name, value, unit in (("b_add", b_add, "Angstrom^2"), ("k_sol", k_sol, "e/Angstrom^3"),
                              ("b_sol", b_sol, "Angstrom^2")):
        _check_number(name, unit, value)
    if k_sol < 0:
        raise ConfigError(f"k_sol [e/Angstrom^3] = {k_sol:g}: must be 0 (no bulk solvent) "
                          "or positive (typically 0.35)")
    structure, name = _structure(gemmi, model, what)
    model_0 = _first_model(gemmi, structure, name)
    cell = reflections.cell_of(structure.cell, name, what)
    group = reflections.space_group_of(structure.find_spacegroup(), name, what)
    atoms = _apply_b(gemmi, model_0, b_add, name)
    previous = gemmi.IT92_get_ignore_charge()
    gemmi.IT92_set_ignore_charge(True)   # as sfcalc does unless --use-charge
    try:
        hkl, F = _fourier(gemmi, structure, model_0, d_min, k_sol, b_sol, name)
    finally:
        gemmi.IT92_set_ignore_charge(previous)
    p1_hkl, p1_F = reflections.expand_to_p1(hkl, F, group, f"{what} {name}")
    parts = [f"{atoms} atoms", f"space group {group.xhm()}", f"d >= {d_min:g} A",
             "X-ray form factors"]
    if b_add:
        parts.append(f"B + {b_add:g} A^2")
    parts.append(f"bulk solvent k_sol {k_sol:g} B_sol {b_sol:g}" if k_sol else "no bulk solvent")
    return Reflections(p1_hkl, p1_F, cell, group.xhm(), f"{what} {name} ({', '.join(parts)})",
                       len(F))


def _check_number(name, unit, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            not math.isfinite(value):
        raise ConfigError(f"{name} [{unit}] must be a finite number, got {value!r}")


def _structure(gemmi, model, what):
    """(a private gemmi.Structure, its name for messages)."""
    if isinstance(model, gemmi.Structure):
        return model.clone(), f"'{model.name or 'structure'}'"
    if not isinstance(model, (str, bytes)) and not hasattr(model, "__fspath__"):
        raise ConfigError(f"model must be a file name or a gemmi.Structure, got "
                          f"{type(model).__name__}")
    data = reflections.read_text_file(model, what)
    if b"_refln." in data and b"_atom_site." not in data:
        raise InputFileError(f"{model} is a structure-factor mmCIF file, not a {what}: give "
                             "it as --sf-cif FILE (or StructureFactors.from_sf_cif)")
    try:
        structure = gemmi.read_structure_string(data)
    except (RuntimeError, ValueError) as exc:
        raise InputFileError(f"cannot read {what} {model}: "
                             f"{' '.join(str(exc).split())}") from None
    return structure, str(model)


def _first_model(gemmi, structure, name):
    if any(not op.given for op in structure.ncs):
        structure.expand_ncs(gemmi.HowToNameCopiedChain.Dup)
    if len(structure) == 0 or not any(True for _ in _atoms(structure[0])):
        raise InputFileError(f"{name} holds no atoms: it is not a coordinate model "
                             "(mmCIF _atom_site or PDB ATOM/HETATM records)")
    for atom in _atoms(structure[0]):
        if atom.element.atomic_number == 0:
            raise InputFileError(f"{name}: atom {atom.name!r} has no known element (give "
                                 "it an element symbol)")
    while len(structure) > 1:
        del structure[1]
    return structure[0]


def _atoms(model):
    for chain in model:
        for residue in chain:
            yield from residue


def _apply_b(gemmi, model, b_add, name):
    """Add b_add to every B (and to the diagonal of the anisotropic B); refuse a negative
    B. Returns the number of atoms."""
    u_add = b_add / (8.0 * math.pi ** 2)
    count = 0
    for atom in _atoms(model):
        count += 1
        if b_add:
            atom.b_iso += b_add
            if atom.aniso.nonzero():
                a = atom.aniso
                atom.aniso = gemmi.SMat33f(a.u11 + u_add, a.u22 + u_add, a.u33 + u_add,
                                           a.u12, a.u13, a.u23)
        if not atom.b_iso >= 0.0:
            raise InputFileError(f"{name}: atom {atom.name!r} has B = {atom.b_iso:g} A^2"
                                 + (f" after b_add {b_add:g}" if b_add else "")
                                 + ": a B must not be negative")
    return count


def _fourier(gemmi, structure, model, d_min, k_sol, b_sol, name):
    """(hkl (n, 3) in the asymmetric unit, d >= d_min, absences included; |F| (n,))."""
    calculator = gemmi.DensityCalculatorX()
    calculator.d_min = d_min
    calculator.rate = RATE
    spacing = d_min / (2 * RATE)
    points = 1.0
    for length in (structure.cell.a, structure.cell.b, structure.cell.c):
        points *= math.ceil(length / spacing)
    if points > MAX_GRID_POINTS:
        raise InputFileError(f"{name}: a density grid of {points:.3g} points for d_min "
                             f"{d_min:g} A (at most {MAX_GRID_POINTS}); use a larger d_min")
    memory.require(GRID_BYTES_PER_POINT * points, f"the density grid of {name} at d_min "
                   f"{d_min:g} A", "use a larger d_min", InputFileError)
    calculator.grid.setup_from(structure)
    calculator.set_refmac_compatible_blur(model)
    calculator.put_model_density_on_grid(model)
    transform = gemmi.transform_map_to_f_phi(calculator.grid, half_l=True)
    data = transform.prepare_asu_data(dmin=d_min, unblur=calculator.blur, with_000=False,
                                      with_sys_abs=True)
    hkl = np.asarray(data.miller_array, dtype=np.int64)
    F = np.asarray(data.value_array, dtype=np.complex128)
    if k_sol:
        F = F + _solvent(gemmi, structure, model, d_min, spacing, hkl, k_sol, b_sol,
                         data.make_1_d2_array())
    amplitudes = np.abs(F)
    absent = np.asarray(structure.find_spacegroup().operations()
                        .systematic_absences(hkl), dtype=bool)
    amplitudes[absent] = 0.0
    return hkl, amplitudes


def _solvent(gemmi, structure, model, d_min, spacing, hkl, k_sol, b_sol, inv_d2):
    """k_sol exp(-B_sol s^2 / 4) F_mask at the reflections ``hkl``."""
    mask = gemmi.FloatGrid()
    mask.setup_from(structure, spacing=spacing)
    masker = gemmi.SolventMasker(gemmi.AtomicRadiiSet.VanDerWaals)
    masker.rprobe = SOLVENT_PROBE
    masker.rshrink = SOLVENT_SHRINK
    masker.put_mask_on_float_grid(mask, model)
    data = gemmi.transform_map_to_f_phi(mask, half_l=True).prepare_asu_data(
        dmin=d_min, with_000=False, with_sys_abs=True)
    mask_hkl = np.asarray(data.miller_array, dtype=np.int64)
    if mask_hkl.shape != hkl.shape or np.any(mask_hkl != hkl):
        raise InputFileError("the solvent mask's reflections differ from the model's")
    scale = k_sol * np.exp(-b_sol * np.asarray(inv_d2) / 4.0)
    return scale * np.asarray(data.value_array, dtype=np.complex128)


__all__ = ["calculate", "RATE", "MIN_D_MIN"]
