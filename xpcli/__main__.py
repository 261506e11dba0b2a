"""``python -m xpcli`` runs the ``xp`` command."""

from .cli import main

main()
