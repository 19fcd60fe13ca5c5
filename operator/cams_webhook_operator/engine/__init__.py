"""The engine: where decisions are carried out.

The controller keeps one state record per object, takes keys from a fair work queue, asks `decisions`
what each needs and carries the plan out; each CAMS account's calls wait in its lane at the account's
pace; the writer puts status, finalizers and Events into the API server; the drift loop reads CAMS,
secret refresh re-reads Secrets, and metrics count it all.

May import: decisions, tenancy, settings, api, cams; the Kubernetes access only through the protocols
it declares (writer.Kube), filled in by the kopf wiring. Never kopf.
"""
