"""Benchmarks (`workpulse bench …`); each prints one JSON line and measures its baseline in
the same run."""
