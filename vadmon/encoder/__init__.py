"""Image-tower backends: where ``[N, 3, S, S]`` preprocessed images become ``[N, D]`` embeddings.

The local torch tower is the default; ``triton`` sends the preprocessed batch to an NVIDIA
Triton Inference Server (``triton_backend``) that serves the tower exported by ``export``.
"""
