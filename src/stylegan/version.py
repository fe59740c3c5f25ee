"""The package version, at the bottom of the import graph (every module may read it)."""
__version__ = "0.1.0"
