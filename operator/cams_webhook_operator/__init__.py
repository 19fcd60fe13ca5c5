"""Kubernetes operator that manages Alibaba Cloud CAMS phone-number webhooks declaratively."""

__version__ = "0.2.1"
