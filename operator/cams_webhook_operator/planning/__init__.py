"""`cams-webhook-operator plan` (and `kubectl cams plan`): what applying manifests would do to CAMS, decided
by the operator's own planner on the facts it would have, with reads only. May import every layer below
the command line; the verdicts themselves are decisions/preview.py."""
