"""The models store: a folder per model, each with a manifest.json describing and checksumming its files."""

from .manifest import Manifest
from .store import ModelStore

__all__ = ["Manifest", "ModelStore"]
