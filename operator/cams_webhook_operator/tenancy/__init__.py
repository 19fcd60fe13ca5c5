"""Tenancy: which account a namespace may use (accounts.py), the credentials an object resolves to
(credentials.py, resolver.py), the Alibaba account a key belongs to (account_ids.py), the proof that
credentials reach a space (space_access.py), callback URLs read from Secrets, and the claims that say which
object manages a number (claims.py).

Reads go through functions handed in (a Secret read, a CAMS read), so nothing here does I/O of its own.

May import: settings, api, cams. Never the decisions, the engine, the Kubernetes access or kopf.
"""
