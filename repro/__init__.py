"""DCGAN reproduction harness (Radford, Metz & Chintala, 2015)."""

__version__ = "0.1.0"
