"""The version of nerkit, in a module of its own: the export manifest records it, and a module
below the package face cannot import ``nerkit`` itself (the face imports everything)."""

__version__ = "0.1.0"
