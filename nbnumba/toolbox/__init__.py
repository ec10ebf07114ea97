"""The companions of nanoBragg: amorphous background (:func:`nonbragg`) and detector
effects (:func:`noisify`), image for image the same as the C programs nonBragg and
noisify, on NumPy arrays."""
from .detector import NoisifyResult, noisify
from .amorphous import NonBraggConfig, NonBraggResult, StolTable, nonbragg

__all__ = ["noisify", "NoisifyResult", "nonbragg", "NonBraggConfig", "NonBraggResult",
           "StolTable"]
