"""Readers and writers of nbnumba's file formats, one module per format.

Importing the package registers the structure-factor file readers that
:class:`nbnumba.config.StructureFactors` calls (``from_mtz``, ``from_sf_cif``,
``from_model``).
"""
from . import model_sf, reflection_files  # noqa: F401  (they register their readers)
