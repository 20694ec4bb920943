"""vadmon: real-time video anomaly monitor built on VadCLIP."""

__version__ = "0.1.0"
