"""The command line: parse, validate, call the library. Nothing imports this package."""
