"""A pure-Python package shipped only in the fixture's layer: proves layers reach the handlers."""

GREETING = "hello from the fixture layer"
