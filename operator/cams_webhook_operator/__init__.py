"""Kubernetes operator that manages Alibaba Cloud CAMS phone-number webhooks declaratively.

The subpackages are the layers, each importing only those below it (one import-linter `layers` contract in
pyproject.toml keeps it so; docs/architecture.md draws it):

    cli                        the console script: `run` (kopf) and `import`
    handlers | importer        the kopf wiring (start-up, watches, probe) | the import command
    wiring                     construction: every part built once and wired to the others
    engine/                    the controller: work queue, account lanes, writer, drift loop, metrics
    decisions/ | kube/         what each object needs, pure | the Kubernetes API access
    tenancy/                   accounts, credentials, callback URLs, claims, proofs of access
    settings                   the operator's settings (environment variables)
    api/ | cams/               the PhoneWebhook contract | the CAMS client; neither knows the other

The CAMS simulator is not part of this package (`cams_simulator`, beside it): the image ships none.
"""

__version__ = "0.2.1"
