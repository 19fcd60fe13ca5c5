"""The Kubernetes API access: status patches, finalizers, Events, claims (Leases) and Secrets through the
official client's asyncio API (api.py, client.py), paged listings and missed-deletion checks (watched.py), and
the leader election (leader.py).

May import: tenancy (claim and Secret types), settings, api. Never a decision type or the engine: what
it writes arrives as plain values.
"""
