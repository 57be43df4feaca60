"""bordermon: real-time border checkpoint monitoring."""

__version__ = "0.1.0"
