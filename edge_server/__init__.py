"""Seminote Edge: real-time music analysis at the network edge."""

__version__ = "0.1.0"
