"""The benchmark's phases, in the order run.py runs them; each returns its result record."""
