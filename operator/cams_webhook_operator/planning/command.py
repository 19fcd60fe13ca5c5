"""`cams-webhook-operator plan`, and the kubectl plugin `kubectl-cams` (`kubectl cams plan`, `kubectl cams
status`), both installed with the package."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from contextlib import AsyncExitStack

from cams_webhook_operator.decisions import preview as pv
from cams_webhook_operator.planning import gather
from cams_webhook_operator.planning.report import RENDER
from cams_webhook_operator.settings import SettingsError, load_settings
from cams_webhook_operator.tenancy.credentials import CredentialProblem, Resolved


def plan_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="What applying these PhoneWebhook manifests would do to CAMS, decided by the operator's "
        "own planner, with reads only (one QueryChatappPhoneNumbers per space; never UpdatePhoneWebhook). "
        "Credentials to read CAMS with come from the environment, as the operator's own do "
        "(ALIBABA_CLOUD_ACCESS_KEY_ID/..., RRSA): a read-only RAM user is enough (docs/ram-policy.md). "
        "Exit code: 0 no change, 2 changes, 3 something refused, conflicting or invalid, 1 the plan could "
        "not be made (an error, or an object it cannot tell about: CAMS or STS unreachable).",
    )
    parser.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        metavar="PATH",
        help="a manifest file, a directory of them (recursive), or - for standard input (repeatable)",
    )
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="also read the cluster KUBECONFIG points at: objects' status, accounts, namespace labels, the "
        "Secrets the caller may read and claims, and apply the operator's tenancy rules",
    )
    parser.add_argument(
        "-n",
        "--namespace",
        help="the namespace of manifests that name none (default: the kubeconfig context's, as kubectl "
        "apply would use, else default)",
    )
    parser.add_argument("-o", "--output", choices=sorted(RENDER), default="table")
    return parser


def context_namespace() -> str:
    """The namespace of the kubeconfig's current context, as kubectl uses it; `default` without one."""
    from kubernetes.aio import config

    paths = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    if not any(os.path.exists(path) for path in paths.split(os.pathsep)):
        return "default"  # no kubeconfig (in a pod, or nowhere): kubectl's default
    try:
        # KUBECONFIG as it is now (the client reads it once, when imported).
        _, current = config.list_kube_config_contexts(os.environ.get("KUBECONFIG") or None)  # type: ignore[no-untyped-call]
    except (config.ConfigException, OSError):  # one that names no current context
        return "default"
    return str((current or {}).get("context", {}).get("namespace") or "default")


async def plan(args: argparse.Namespace) -> int:
    from kubernetes.aio.client.exceptions import ApiException

    from cams_webhook_operator.cams.client import CamsClient
    from cams_webhook_operator.kube import client as kube_client
    from cams_webhook_operator.planning.identity import operator_identity
    from cams_webhook_operator.planning.run import Cluster, PlanRun

    try:
        settings = load_settings()
        bodies = gather.read_manifests(args.filename)
    except (SettingsError, ValueError, OSError) as bad:
        print(f"plan: {bad}", file=sys.stderr)
        return 1
    found = await operator_identity(settings)
    reader = found if isinstance(found, Resolved) else None
    if reader is None and not args.cluster:
        assert isinstance(found, CredentialProblem)
        print(f"plan: no credentials to read CAMS with: {found.message}", file=sys.stderr)
        return 1
    default = args.namespace or context_namespace()
    async with AsyncExitStack() as stack:
        cams = CamsClient(
            endpoint=settings.endpoint,
            timeout_seconds=settings.timeout_seconds,
            sts_endpoint=settings.sts_host,
            proxies=settings.proxies(),
        )
        stack.push_async_callback(cams.aclose)
        try:
            cluster = None
            if args.cluster:
                api = await stack.enter_async_context(await kube_client.connect())
                namespaces = {str((b.get("metadata") or {}).get("namespace") or default) for b in bodies}
                cluster = await Cluster.read(api, settings, reader, namespaces)
            run = PlanRun(settings, cams, reader, cluster, namespace=default)
            previews = [await run.object(body) for body in bodies]
        except ApiException as refused:
            print(
                f"plan: the API server refused a read ({refused.status} {refused.reason}): the caller needs "
                "the read-only rights of the chart's ClusterRole <release>-plan (docs/gitops.md)",
                file=sys.stderr,
            )
            return 1
        except (OSError, TimeoutError) as unreachable:  # aiohttp's connection errors are OSErrors
            print(f"plan: could not reach the API server: {unreachable}", file=sys.stderr)
            return 1
    totals = pv.totals(previews, qps=run.lanes, reads=run.reads_made)
    print(RENDER[args.output](previews, totals), end="")
    return pv.exit_code(totals)


def main(argv: list[str] | None = None) -> int:
    """`cams-webhook-operator plan ...` (argv without "plan")."""
    args = plan_parser("cams-webhook-operator plan").parse_args(argv)
    return asyncio.run(plan(args))


def kubectl_main(argv: list[str] | None = None) -> int:
    """kubectl's plugin: `kubectl cams plan ...`, `kubectl cams status`."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["plan"]:
        return asyncio.run(plan(plan_parser("kubectl cams plan").parse_args(argv[1:])))
    if argv[:1] == ["status"]:
        from cams_webhook_operator.planning.status import main as status_main

        return status_main(argv[1:])
    usage = (
        "kubectl cams plan -f PATH [--cluster] [-o table|json|markdown] | kubectl cams status [-A | -n NS]"
    )
    print(f"usage: {usage}", file=sys.stderr)
    return 2
