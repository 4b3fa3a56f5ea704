"""The fault suite's session figures are counted while it runs and printed at the end by tests/conftest.py (the
README quotes them): there, so that under pytest-xdist the controller, which collects no test, merges every
worker's figures and prints them once."""
