"""The ``marketlake`` command."""
