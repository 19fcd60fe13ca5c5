"""Alibaba Cloud CAMS: request signing (V3), the async HTTP client (httpx over aiohttp), the classification
of its answers, and RRSA's STS exchange.

May import: nothing of the operator's. Never the contract, Kubernetes or kopf.
"""
