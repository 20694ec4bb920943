"""Inference process: snippets from every camera → CLIP batch → per-camera window → scores."""
