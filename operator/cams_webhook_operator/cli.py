"""The `cams-webhook-operator` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from cams_webhook_operator import __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cams-webhook-operator",
        description="Run the operator that applies PhoneWebhook objects to Alibaba Cloud CAMS "
        "(or `cams-webhook-operator import --help` to print PhoneWebhooks from a space, "
        "`cams-webhook-operator plan --help` to see what manifests would do to CAMS first). "
        "Settings come from the environment (see docs/settings.md); the cluster from KUBECONFIG, "
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


def _import_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cams-webhook-operator import",
        description="Print one PhoneWebhook per number of a CAMS space, in Observe mode, from what CAMS "
        "holds. Credentials come from the operator's usual sources (ALIBABA_CLOUD_ACCESS_KEY_ID/..._SECRET/"
        "..._SECURITY_TOKEN, or RRSA); the endpoint from CAMS_ENDPOINT.",
    )
    parser.add_argument("--space", required=True, help="the CAMS space (CustSpaceId) to read")
    parser.add_argument("--namespace", help="namespace of the printed objects")
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--credentials-secret", metavar="NAME", help="set spec.credentialsSecretRef to this Secret"
    )
    which.add_argument(
        "--account",
        metavar="KIND/NAME",
        type=_account_arg,
        help="set spec.accountRef (CamsAccount/NAME or ClusterCamsAccount/NAME); the account is read from "
        "the cluster and must allow --namespace and --space, as the operator would require",
    )
    parser.add_argument(
        "--urls-to-secrets",
        action="store_true",
        help="write callback URLs that carry a path, a query string or user-info (tokens) into one Secret "
        "per number, printed before its PhoneWebhook, which names it in statusCallbackUrlFrom/"
        "upCallbackUrlFrom; seal or encrypt the Secrets before they go to Git",
    )
    return parser


def _account_arg(value: str) -> tuple[str, str]:
    from cams_webhook_operator.api.models import ACCOUNT_KIND, CLUSTER_ACCOUNT_KIND

    kind, _, name = value.partition("/")
    if kind not in (ACCOUNT_KIND, CLUSTER_ACCOUNT_KIND) or not name:
        raise argparse.ArgumentTypeError(
            f"expected CamsAccount/NAME or ClusterCamsAccount/NAME, got {value!r}"
        )
    return kind, name


async def _account_refusal(account: tuple[str, str], namespace: str, space: str) -> str | None:
    """Why the operator would refuse objects of `namespace` and `space` that name `account`, or None."""
    from kubernetes.aio import client

    from cams_webhook_operator.api.models import (
        ACCOUNT_KIND,
        ACCOUNT_PLURAL,
        CLUSTER_ACCOUNT_PLURAL,
        GROUP,
        VERSION,
    )
    from cams_webhook_operator.kube import client as kube_client
    from cams_webhook_operator.tenancy.accounts import Account, allowed
    from cams_webhook_operator.tenancy.credentials import CredentialProblem

    kind, name = account
    async with await kube_client.connect() as api:
        custom = client.CustomObjectsApi(api)
        if kind == ACCOUNT_KIND:
            read_account = custom.get_namespaced_custom_object(
                GROUP, VERSION, kube_client.name(namespace), ACCOUNT_PLURAL, kube_client.name(name)
            )
        else:
            read_account = custom.get_cluster_custom_object(
                GROUP, VERSION, CLUSTER_ACCOUNT_PLURAL, kube_client.name(name)
            )
        found = await kube_client.or_none(read_account)
        read = await kube_client.or_none(
            kube_client.answer(kube_client.CoreGroup(api).read_namespace(namespace))
        )
        if found is None or read is None:
            return f"{kind} {name} (or namespace {namespace}) does not exist"
        labels = (read.get("metadata") or {}).get("labels") or {}
    verdict = allowed(
        Account.of(kube_client.as_json(found), kind), namespace=namespace, space=space, labels=labels
    )
    return verdict.message if isinstance(verdict, CredentialProblem) else None


async def _import(args: argparse.Namespace) -> int:
    from cams_webhook_operator.cams.client import CamsClient
    from cams_webhook_operator.cams.outcomes import Verdict
    from cams_webhook_operator.importer import manifests, render
    from cams_webhook_operator.settings import SettingsError, load_settings
    from cams_webhook_operator.tenancy.credentials import CredentialProblem

    if args.account is not None:
        if not args.namespace:
            print("import: --account needs --namespace (where the objects will live)", file=sys.stderr)
            return 2
        refusal = await _account_refusal(args.account, args.namespace, args.space)
        if refusal is not None:
            print(f"import: the operator would refuse these objects: {refusal}", file=sys.stderr)
            return 1
    try:
        settings = load_settings()
    except SettingsError as bad:
        print(f"import: bad setting:\n{bad}", file=sys.stderr)
        return 2
    from cams_webhook_operator.planning.identity import operator_identity

    resolved = await operator_identity(settings)
    if isinstance(resolved, CredentialProblem):
        print(f"import: {resolved.message}", file=sys.stderr)
        return 1
    credentials = resolved.credentials
    client = CamsClient(
        endpoint=settings.endpoint, timeout_seconds=settings.timeout_seconds, proxies=settings.proxies()
    )
    try:
        outcome, numbers = await client.query_phone_numbers(args.space, credentials)
    finally:
        await client.aclose()
    if outcome.verdict is not Verdict.OK:
        said = f"{outcome.answer.code}: {outcome.answer.message}" if outcome.answer else outcome.error
        print(
            f"import: CAMS refused QueryChatappPhoneNumbers for space {args.space} ({said})", file=sys.stderr
        )
        return 1
    objects = manifests(
        space=args.space,
        namespace=args.namespace,
        numbers=numbers,
        credentials_secret=args.credentials_secret,
        account=args.account,
        urls_to_secrets=args.urls_to_secrets,
    )
    print(render(space=args.space, objects=objects), end="")
    return 0


def bracketed(url: str) -> str:
    """The chart serves the probe on the pod's own address, `http://$(POD_IP):8080/healthz`; an IPv6 pod IP
    needs brackets there (`http://[fd00::1]:8080/healthz`), which the kubelet's expansion cannot add."""
    scheme, sep, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    if sep and netloc.count(":") > 1 and not netloc.startswith("["):
        host, _, port = netloc.rpartition(":")
        return f"{scheme}://[{host}]:{port}{slash}{path}"
    return url


def _one_shot(command: str, argv: list[str]) -> int:
    """`import` and `plan`: they read, print and exit; no kopf."""
    if command == "import":
        return asyncio.run(_import(_import_parser().parse_args(argv)))
    from cams_webhook_operator.planning.command import main as plan

    return plan(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["import"], ["plan"]):
        return _one_shot(argv[0], argv[1:])
    args = _parser().parse_args(argv)
    # Imported late: `--help` and `--version` must work without a cluster or kopf's start-up cost.
    import kopf

    from cams_webhook_operator import handlers  # noqa: F401 -- registers the handlers
    from cams_webhook_operator.kube.leader import process_identity
    from cams_webhook_operator.settings import SettingsError, load_settings

    try:
        settings = load_settings()  # fail now, before kopf starts, naming the variable
    except SettingsError as bad:
        print(f"cams-webhook-operator: bad setting:\n{bad}", file=sys.stderr)
        return 2
    identity = process_identity()  # one per process: kopf's peering and the leader Lease share it
    # Given to kopf the way it documents (POD_ID; its `identity` argument is typed with a name it does not
    # export), not detected: its detection asks the passwd database for the user's name, and the image's
    # numeric user (65532) has no entry there.
    os.environ["POD_ID"] = identity
    kopf.configure(verbose=args.verbose, quiet=args.quiet)
    if not args.verbose:
        # One line per watch event drowns the lines that matter at hundreds of objects.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    # Never, not even with --verbose: httpx logs each request's URL, and a CAMS call's query carries the
    # callback URLs, tokens included (one line per call would drown the log too).
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(
        kopf.operator(
            clusterwide=not args.namespace,
            namespaces=args.namespace,
            liveness_endpoint=bracketed(args.liveness or settings.liveness_endpoint),
            standalone=True,
            memo=kopf.Memo(identity=identity, namespaces=args.namespace or []),
        )
    )
    # kopf has stopped and its cleanup ran (the leader Lease released, or given up on). Not asyncio.run:
    # it would wait for the worker threads, and a Kubernetes call hanging in one (a stalled API server:
    # up to 100 s with the client's retries) would keep a replica that lost its lease from restarting.
    # Whatever such a call was doing, the next leader re-checks.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
