"""The version of nbnumba (one place: the package, the commands and the build read it)."""
__version__ = "0.1.0"
