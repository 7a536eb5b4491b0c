"""Text → vectors with an ONNX embedder from the models store (onnxruntime + tokenizers, no torch)."""

from .onnx_embedder import OnnxEmbedder, load_active_embedder

__all__ = ["OnnxEmbedder", "load_active_embedder"]
