"""The benchmark suite behind ``make bench``: B1–B7 against baselines measured in the same run.

Not a workspace member: a harness that drives the product from outside (servers, service processes, peers),
run as ``python -m bench`` from the repository root. ``tests/bench`` runs every benchmark once at a tiny size.
"""
