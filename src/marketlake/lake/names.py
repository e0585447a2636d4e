"""Lake table names: ``area/table`` paths, given as text or as a catalogue dataset."""

from __future__ import annotations

import re

from marketlake.catalogue import Dataset
from marketlake.errors import TerminalError

TableRef = str | Dataset
_TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]*(/[a-z][a-z0-9_]*)+$")


def validate_table_name(name: TableRef) -> str:
    """The table path of ``name`` (a dataset or ``area/table`` text), checked.

    Paths are lower-case letters, digits and ``_`` in two or more segments.
    """
    if isinstance(name, Dataset):
        return name.lake_table
    if not isinstance(name, str) or not _TABLE_NAME.match(name):
        raise TerminalError(
            f"invalid table name {name!r}: use lower-case path segments like 'curated/bars_1d'"
        )
    return name
