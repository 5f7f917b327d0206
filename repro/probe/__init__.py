"""`python -m repro.probe`: the paper's protocols (Tables 1-3) on anyone's GAN (repro.probe.cli)."""

from repro.probe.cli import main
from repro.probe.models import Probed, build, load_factory

__all__ = ["Probed", "build", "load_factory", "main"]
