"""The release, in one place (the package's `__version__` and what files record)."""

__version__ = "0.1.0"
