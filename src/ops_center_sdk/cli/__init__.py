"""The ``ops-center-plugin`` command line."""
