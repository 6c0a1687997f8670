"""``python -m selfheal`` runs the CLI."""

from selfheal.cli import main

main()
