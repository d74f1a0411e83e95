"""Oxios actors: the Oxios Agent OS on a Thespian actor runtime."""

__version__ = "0.2.0-alpha"

__all__ = ["__version__"]
