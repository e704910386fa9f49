"""workpulse: real-time monitoring of work-related content on short-video platforms."""

__version__ = "0.1.0"
