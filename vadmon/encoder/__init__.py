"""CLIP image-tower backends behind one interface (``base.ImageEncoder``).

``torch_backend`` is the original path (torch fp32/bf16/int8-dynamic), ``openvino_backend``
converts the tower once with OpenVINO (fp32/bf16, int8 by NNCF post-training quantisation) and
caches it; ``probe`` measures backends × precisions × threads for ``backend: auto``;
``select`` builds the configured encoder behind the fidelity gate (``gate``) with fallback to
torch. Kept out of ``vadmon.model`` so the model package stays free of inference plumbing.
``triton_backend`` sends the preprocessed batch to an NVIDIA Triton Inference Server that serves
the tower exported by ``export``.
"""
