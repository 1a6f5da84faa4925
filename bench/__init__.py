"""Benchmarks: run by ``make bench`` (``python -m bench``); they print figures, tests never time."""
