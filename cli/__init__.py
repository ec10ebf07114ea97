"""nbnumba's command-line programs (installed as the ``nbnumba_cli`` package)."""
