"""Merged reflection files through gemmi: MTZ and structure-factor mmCIF (the PDB's
``1abc-sf.cif``), expanded to P1 (:mod:`nbnumba.io.reflections`).

Which column is read:

* the column named by ``column`` (an MTZ label such as ``FP``, or an mmCIF ``_refln``
  tag without its prefix such as ``F_meas_au``), which must hold amplitudes or
  intensities;
* otherwise the file's one amplitude column (MTZ type F; mmCIF ``F_meas_au``,
  ``F_meas``, ``F_calc`` ...); with several, the file is ambiguous and the message lists
  them; with none, its one intensity column (MTZ type J; mmCIF ``intensity_meas``,
  ``F_squared_meas`` ...).

Intensities become amplitudes by **F = sqrt(I) for I > 0 and F = 0 for I <= 0** (no
French-Wilson treatment: for a simulation the sign of a weak measured intensity does not
matter; use ``ctruncate`` or ``dials.merge`` first for a careful conversion). Anomalous
columns (F(+)/F(-), I(+)/I(-)) are not read: the simulation obeys Friedel's law.
Reflections whose value is missing (``?`` in mmCIF, NaN in MTZ) are left out, and get
``default_F`` like any reflection the file does not list. Unmerged files (MTZ with
batches, mmCIF ``_diffrn_refln``) are refused: merge them first. Of a structure-factor
mmCIF with several data blocks, the first block with a ``_refln`` loop is read (the
PDB's convention: the data set the model was refined against).
"""
import numpy as np

from .. import memory
from ..errors import InputFileError
from . import reflections
from .reflections import Reflections

#: largest MTZ file read (bytes)
MAX_MTZ_BYTES = 4096 * reflections.MiB

#: memory gemmi needs per byte of MTZ file (the table is held as float32, as on disk)
MTZ_BYTES_PER_BYTE = 2

_MTZ_AMPLITUDE, _MTZ_INTENSITY = "F", "J"
_MTZ_KINDS = {"F": "amplitudes", "J": "intensities", "G": "anomalous amplitudes (F(+)/F(-))",
              "K": "anomalous intensities (I(+)/I(-))", "D": "anomalous differences",
              "Q": "standard deviations", "P": "phases", "W": "weights",
              "A": "Hendrickson-Lattman coefficients", "I": "integers", "R": "real numbers",
              "H": "Miller indices", "Y": "M/ISYM", "B": "batch numbers",
              "L": "standard deviations", "M": "standard deviations",
              "E": "normalised amplitudes"}

#: mmCIF _refln tags holding amplitudes or intensities (anomalous and sigma tags are not)
CIF_AMPLITUDES = ("F_meas_au", "F_meas", "F_calc", "F_calc_au", "pdbx_F_meas",
                  "pdbx_F_calc")
CIF_INTENSITIES = ("intensity_meas", "intensity_calc", "F_squared_meas", "F_squared_calc",
                   "pdbx_I_meas")


def read_mtz(path, column=None, what="MTZ file"):
    """:class:`Reflections` (P1) of a merged MTZ file's amplitude (or intensity) column.

    path: the file; column: the label of the column to read (None: chosen as the module
    docstring says). Raises :class:`~nbnumba.InputFileError` (one line) for a file that
    is not a merged MTZ file or a column missing, ambiguous or of another kind.
    """
    gemmi = reflections.require_gemmi("StructureFactors.from_mtz")
    size = reflections.check_binary_file(path, what, reflections.MTZ_MAGIC, MAX_MTZ_BYTES)
    memory.require(MTZ_BYTES_PER_BYTE * size, f"reading {what} {path}",
                   f"use a smaller {what}", InputFileError)
    try:
        mtz = gemmi.read_mtz_file(str(path))
    except (RuntimeError, ValueError, OSError) as exc:
        raise InputFileError(f"cannot read {what} {path}: {_one_line(exc)}") from None
    labels = [c.label for c in mtz.columns]
    if len(mtz.batches) or "M/ISYM" in labels:
        raise InputFileError(f"{what} {path} is unmerged (it has batches): merge it first "
                             "(e.g. aimless or dials.merge) or give a merged file")
    chosen, intensities = _mtz_column(mtz, column, path, what)
    values = np.asarray(chosen.array, dtype=np.float64)
    hkl = np.asarray(mtz.make_miller_array(), dtype=np.int64)
    cell = reflections.cell_of(mtz.get_cell(chosen.dataset_id), path, what)
    group = reflections.space_group_of(mtz.spacegroup, path, what)
    kind = f"column {chosen.label}" + (", F = sqrt(max(I, 0))" if intensities else "")
    return _finish(hkl, values, intensities, cell, group, path, what, kind)


def _mtz_column(mtz, column, path, what):
    """(gemmi column, whether it holds intensities)."""
    columns = list(mtz.columns)
    if column is not None:
        found = [c for c in columns if c.label == column]
        if not found:
            raise InputFileError(f"{what} {path} has no column {column!r} (amplitudes: "
                                 f"{_listed(columns, 'F')}; intensities: "
                                 f"{_listed(columns, 'J')})")
        chosen = found[0]
        if chosen.type not in (_MTZ_AMPLITUDE, _MTZ_INTENSITY):
            kind = _MTZ_KINDS.get(chosen.type, f"type {chosen.type}")
            raise InputFileError(f"{what} {path}: column {column} holds {kind} (type "
                                 f"{chosen.type}), not amplitudes (type F) or intensities "
                                 "(type J)")
        return chosen, chosen.type == _MTZ_INTENSITY
    for kind, name in ((_MTZ_AMPLITUDE, "amplitude"), (_MTZ_INTENSITY, "intensity")):
        found = [c for c in columns if c.type == kind]
        if len(found) == 1:
            return found[0], kind == _MTZ_INTENSITY
        if len(found) > 1:
            raise InputFileError(f"{what} {path} has {len(found)} {name} columns "
                                 f"({', '.join(c.label for c in found)}): choose one "
                                 "(--mtz-column LABEL, or column=)")
    raise InputFileError(f"{what} {path} has no amplitude (type F) or intensity (type J) "
                         f"column (columns: {', '.join(c.label + ' ' + c.type for c in columns)})")


def _listed(columns, kind):
    names = [c.label for c in columns if c.type == kind]
    return ", ".join(names) if names else "none"


def read_sf_cif(path, column=None, what="structure-factor mmCIF file"):
    """:class:`Reflections` (P1) of a structure-factor mmCIF file (``_refln`` loop).

    path: the file (gzip-compressed or not); column: the ``_refln`` tag to read, with or
    without the ``_refln.`` prefix (None: chosen as the module docstring says).
    """
    gemmi = reflections.require_gemmi("StructureFactors.from_sf_cif")
    data = reflections.read_text_file(path, what)
    try:
        document = gemmi.cif.read_string(data)
        blocks = gemmi.as_refln_blocks(document)
    except (RuntimeError, ValueError) as exc:
        raise InputFileError(f"cannot read {what} {path}: {_one_line(exc)}") from None
    merged = [b for b in blocks if b.default_loop is not None and b.is_merged()]
    if not merged:
        if any(b.default_loop is not None for b in blocks):
            raise InputFileError(f"{what} {path} holds unmerged reflections "
                                 "(_diffrn_refln): merge them first")
        if b"_atom_site." in data:
            raise InputFileError(f"{path} is a coordinate model, not a {what}: give it as "
                                 "--model FILE (or StructureFactors.from_model)")
        raise InputFileError(f"{path} is not a {what}: it has no _refln loop")
    block = merged[0]
    tag, intensities = _cif_column(block, column, path, what)
    values = np.asarray(block.make_float_array(tag), dtype=np.float64)
    hkl = np.asarray(block.make_miller_array(), dtype=np.int64)
    cell = reflections.cell_of(block.cell, path, what)
    group = reflections.space_group_of(block.spacegroup, path, what)
    kind = (f"block {block.block.name}, _refln.{tag}"
            + (", F = sqrt(max(I, 0))" if intensities else ""))
    return _finish(hkl, values, intensities, cell, group, path, what, kind)


def _cif_column(block, column, path, what):
    labels = list(block.column_labels())
    if column is not None:
        tag = column[len("_refln."):] if column.startswith("_refln.") else column
        if tag not in labels:
            raise InputFileError(f"{what} {path} has no _refln.{tag} (amplitudes: "
                                 f"{_present(labels, CIF_AMPLITUDES)}; intensities: "
                                 f"{_present(labels, CIF_INTENSITIES)})")
        if tag not in CIF_AMPLITUDES + CIF_INTENSITIES:
            raise InputFileError(f"{what} {path}: _refln.{tag} holds neither amplitudes ("
                                 f"{', '.join(CIF_AMPLITUDES)}) nor intensities ("
                                 f"{', '.join(CIF_INTENSITIES)})")
        return tag, tag in CIF_INTENSITIES
    for tags, name in ((CIF_AMPLITUDES, "amplitude"), (CIF_INTENSITIES, "intensity")):
        found = [t for t in labels if t in tags]
        if len(found) == 1:
            return found[0], tags is CIF_INTENSITIES
        if len(found) > 1:
            raise InputFileError(f"{what} {path} has {len(found)} {name} columns "
                                 f"({', '.join('_refln.' + t for t in found)}): choose one "
                                 "(--sf-cif-column TAG, or column=)")
    raise InputFileError(f"{what} {path} has no amplitude or intensity column (_refln: "
                         f"{', '.join(labels)})")


def _present(labels, tags):
    found = [t for t in labels if t in tags]
    return ", ".join(found) if found else "none"


def _finish(hkl, values, intensities, cell, group, path, what, kind):
    """Amplitudes (intensities converted), missing values dropped, expanded to P1."""
    listed = len(values)
    hkl, values = reflections.finite(hkl, values)
    if not len(values):
        raise InputFileError(f"{what} {path}: no reflection has a value in the chosen "
                             "column")
    if intensities:
        values = np.sqrt(np.maximum(values, 0.0))
    p1_hkl, p1_F = reflections.expand_to_p1(hkl, values, group, f"{what} {path}")
    source = (f"{what} {path} ({kind}; {len(values)} of {listed} reflections with a value, "
              f"space group {group.xhm()})")
    return Reflections(p1_hkl, p1_F, cell, group.xhm(), source, len(values))


def _one_line(exc):
    return " ".join(str(exc).split()) or type(exc).__name__


__all__ = ["read_mtz", "read_sf_cif", "CIF_AMPLITUDES", "CIF_INTENSITIES", "MAX_MTZ_BYTES"]
