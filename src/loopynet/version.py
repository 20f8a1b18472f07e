"""loopynet's version, in its own module so the library can read it without importing the package
root (which lazily re-exports the APIs that read it: an import cycle)."""

__version__ = "0.1.0"
