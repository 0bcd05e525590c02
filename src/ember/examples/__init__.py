"""Runnable programs: `python -m ember.examples.<name>`."""
