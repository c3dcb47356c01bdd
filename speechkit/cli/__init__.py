"""The ``speechkit`` command line. Each subcommand is a thin wrapper around a library function."""
