"""medbench: a competition harness for medical imaging."""

__version__ = "0.1.0"
