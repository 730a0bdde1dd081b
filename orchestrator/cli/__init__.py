"""The ``drill`` command line. ``main`` imports only argparse; each command imports what it uses."""
