"""The `cams-webhook-operator` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys

from cams_webhook_operator import __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cams-webhook-operator",
        description="Run the operator that applies PhoneWebhook objects to Alibaba Cloud CAMS. "
        "Settings come from the environment (see the README); the cluster from KUBECONFIG, "
        "the current context, or the in-cluster service account.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        metavar="NS",
        help="watch this namespace (repeatable; glob patterns allowed); default: all namespaces",
    )
    parser.add_argument(
        "--liveness",
        metavar="URL",
        default=None,
        help="serve the liveness probe here (default: CAMS_LIVENESS_ENDPOINT, http://127.0.0.1:8080/healthz)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Imported late: `--help` and `--version` must work without a cluster or kopf's start-up cost.
    import kopf
    from kopf._core.engines.peering import Identity  # kopf types the argument but does not export it

    from cams_webhook_operator import handlers  # noqa: F401 -- registers the handlers
    from cams_webhook_operator.settings import OperatorSettings

    settings = OperatorSettings()  # fail now, with pydantic's message, on a bad setting
    kopf.configure(verbose=args.verbose, quiet=args.quiet)
    if not args.verbose:
        # One line per watch event and per HTTP call drowns the lines that matter at hundreds of objects.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
        logging.getLogger("httpx").setLevel(logging.WARNING)
    asyncio.run(
        kopf.operator(
            clusterwide=not args.namespace,
            namespaces=args.namespace,
            liveness_endpoint=args.liveness or settings.liveness_endpoint,
            standalone=True,
            # Given, not detected: kopf's detection asks the passwd database for the user's name, and the
            # image's numeric user (65532) has no entry there.
            identity=Identity(f"{socket.gethostname()}_{os.getpid()}"),
            memo=kopf.Memo(),
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
