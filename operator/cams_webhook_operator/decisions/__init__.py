"""Decisions, pure: what one object needs, as a plan (reconcile.py), and the rules the plan uses:
state records, status and conditions, number health, drift rules, pacing and breakers, the fair queue.

No I/O and no clock of their own: time and facts come in as arguments.

May import: tenancy (its types and rules), settings, api, cams (messages and outcomes). Never the engine,
the Kubernetes access, kopf, an HTTP client or prometheus_client.
"""
