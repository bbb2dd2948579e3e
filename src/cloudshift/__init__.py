"""cloudshift: move object storage between clouds, resumably, with proof nothing was lost."""

__version__ = "0.1.0"
