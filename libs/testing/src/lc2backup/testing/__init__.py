"""Test-only code, kept out of the production packages (the image installs only the six services):
the Kubernetes API emulator that ``kubectl`` and crd-gateway talk to in the k8s tests.
"""

from lc2backup.testing.kube import KubeEmulator

__all__ = ["KubeEmulator"]
