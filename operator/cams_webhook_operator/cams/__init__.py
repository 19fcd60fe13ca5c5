"""Alibaba Cloud CAMS: request signing (V3), the async HTTP client and the classification of its answers.

Nothing here knows about Kubernetes or kopf.
"""
