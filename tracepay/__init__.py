"""tracepay: the command line and the process supervision that run the parts together."""

__version__ = "0.1.0"
