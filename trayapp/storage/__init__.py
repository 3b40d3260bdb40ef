"""The dataset: today's CSV, the day files, the rollup tiers and their copies, reading a range.

Imports nothing at import time beyond its modules; see each module for what it must not import.
"""
