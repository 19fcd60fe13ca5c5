"""The generated CRD on a real API server: bad manifests refused with a message a person understands,
the status subresource, printer columns and `kubectl explain`. Every test runs twice: on the current
kube-apiserver and on the oldest the chart supports (Chart.yaml's kubeVersion), so a CEL function or schema
feature newer than that fails here."""

from __future__ import annotations

import re

import pytest

from .harness import Kubectl, wait_for


def _in_older_words(stderr: str) -> str:
    """kube-apiserver 1.30's wording of a too-long value ("may not be longer than N"), as the current one
    says it ("may not be more than N bytes")."""
    return re.sub(r"may not be longer than (\d+)", r"may not be more than \1 bytes", stderr)


@pytest.fixture(scope="module", params=["current", "oldest"])
def kubectl(request: pytest.FixtureRequest) -> Kubectl:
    """This module's API server: the tier's (current) one, then the oldest supported one."""
    name = "kubectl" if request.param == "current" else "oldest_kubectl"
    client = request.getfixturevalue(name)
    assert isinstance(client, Kubectl)
    return client


def manifest(name: str, namespace: str, spec: str) -> str:
    return f"""
apiVersion: camswebhook.io/v1alpha1
kind: PhoneWebhook
metadata: {{name: {name}, namespace: {namespace}}}
spec:
{spec}
"""


GOOD_SPEC = """  custSpaceId: space-1
  phoneNumber: "8613800001234"
  statusCallbackUrl: https://hooks.example.com/status
"""


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            '  custSpaceId: s\n  phoneNumber: "+86 138-0000-1234"\n',
            "phoneNumber must be the number in international format",
        ),
        (
            '  custSpaceId: s\n  phoneNumber: "8613800001234"\n  statusCallbackUrl: ftp://files.example.com/x\n',
            "statusCallbackUrl must be an absolute http:// or https:// URL",
        ),
        (
            '  custSpaceId: s\n  phoneNumber: "8613800001234"\n  upCallbackUrl: not a url\n',
            "upCallbackUrl must be an absolute http:// or https:// URL",
        ),
        (
            '  custSpaceId: s\n  phoneNumber: "8613800001234"\n'
            "  statusCallbackUrl: https://hook:s3cret@hooks.example.com/status\n",
            "statusCallbackUrl must not carry a user name or password",
        ),
        (
            '  custSpaceId: s\n  phoneNumber: "8613800001234"\n  upCallbackUrl: https://x.example/'
            + "a" * 1100
            + "\n",
            "spec.upCallbackUrl: Too long: may not be more than 1024",
        ),
        ('  custSpaceId: s\n  phoneNumber: "8613800001234"\n  colour: blue\n', 'unknown field "spec.colour"'),
        ("  custSpaceId: s\n", "spec.phoneNumber: Required value"),
        (
            '  custSpaceId: s\n  phoneNumber: "8613800001234"\n  httpFlag: "Y"\n',
            'spec.httpFlag: Invalid value: "string": spec.httpFlag in body must be of type boolean',
        ),
        (
            '  custSpaceId: s\n  phoneNumber: "8613800001234"\n'
            "  credentialsSecretRef: {name: c, namespace: other}\n",
            "only a Secret in this object's own namespace may be used",
        ),
        (
            '  custSpaceId: "my space"\n  phoneNumber: "8613800001234"\n',
            "custSpaceId must be the CAMS space ID",
        ),
        (
            '  custSpaceId: s\n  phoneNumber: "8613800001234"\n  upCallbackUrl: https://a.example/in\n'
            "  upCallbackUrlFrom: {secretKeyRef: {name: hooks, key: inbound}}\n",
            "upCallbackUrl and upCallbackUrlFrom both give the upCallbackUrl URL: give one of them",
        ),
        (
            '  custSpaceId: s\n  phoneNumber: "8613800001234"\n'
            "  statusCallbackUrlFrom: {secretKeyRef: {name: hooks, key: status, namespace: other}}\n",
            "only a Secret in this object's own namespace may be used",
        ),
        (
            '  custSpaceId: s\n  phoneNumber: "8613800001234"\n'
            "  statusCallbackUrlFrom: {secretKeyRef: {name: hooks}}\n",
            "spec.statusCallbackUrlFrom.secretKeyRef.key: Required value",
        ),
    ],
    ids=[
        "bad-phone-number",
        "ftp-url",
        "not-a-url",
        "url-with-password",
        "over-long-url",
        "unknown-field",
        "missing-phone-number",
        "string-flag",
        "secret-in-other-namespace",
        "space-id-with-blank",
        "url-and-url-from",
        "url-secret-in-other-namespace",
        "url-secret-without-key",
    ],
)
def test_bad_manifest_is_refused_with_a_clear_message(
    kubectl: Kubectl, namespace: str, spec: str, message: str
) -> None:
    result = kubectl.apply(manifest("bad", namespace, spec), check=False)
    assert result.returncode != 0
    assert message in result.stderr or message in _in_older_words(result.stderr), result.stderr
    assert kubectl.run("get", "phonewebhook", "bad", "-n", namespace, check=False).returncode != 0


@pytest.mark.parametrize(
    ("field", "new_value"),
    [("phoneNumber", '"8613800009999"'), ("custSpaceId", "space-2")],
    ids=["phone-number", "space-id"],
)
def test_identity_fields_are_immutable(kubectl: Kubectl, namespace: str, field: str, new_value: str) -> None:
    kubectl.apply(manifest("fixed", namespace, GOOD_SPEC))
    changed = GOOD_SPEC.replace(
        f"{field}: " + ('"8613800001234"' if field == "phoneNumber" else "space-1"), f"{field}: {new_value}"
    )
    result = kubectl.apply(manifest("fixed", namespace, changed), check=False)
    assert result.returncode != 0
    assert f"{field} is immutable" in result.stderr
    assert "delete this PhoneWebhook and create a new one" in result.stderr


def test_new_object_starts_with_observed_generation_minus_one(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(manifest("fresh", namespace, GOOD_SPEC))
    obj = kubectl.json("get", "phonewebhook", "fresh", "-n", namespace)
    assert obj["metadata"]["generation"] == 1
    assert obj["status"]["observedGeneration"] == -1


def test_status_is_a_subresource(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(manifest("sub", namespace, GOOD_SPEC))
    # A status sent with the main resource is ignored ...
    kubectl.run(
        "patch", "phonewebhook", "sub", "-n", namespace, "--type=merge", "-p", '{"status":{"code":"X"}}'
    )
    assert "code" not in kubectl.json("get", "phonewebhook", "sub", "-n", namespace)["status"]
    # ... and written through /status without bumping the generation.
    kubectl.run(
        "patch",
        "phonewebhook",
        "sub",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status":{"code":"OK"}}',
    )
    obj = kubectl.json("get", "phonewebhook", "sub", "-n", namespace)
    assert (obj["status"]["code"], obj["metadata"]["generation"]) == ("OK", 1)


def test_printer_columns_short_name_and_category(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(manifest("cols", namespace, GOOD_SPEC))
    header = kubectl.run("get", "phonewebhooks", "-n", namespace).stdout.splitlines()[0].split()
    assert header == ["NAME", "PHONE", "MODE", "READY", "REASON", "AGE"]
    wide = kubectl.run("get", "pwh", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert wide[0].split() == [
        *("NAME", "PHONE", "MODE", "READY", "REASON", "AGE", "CODE", "SPACE", "QUALITY", "STATUS", "MESSAGE")
    ]
    assert wide[1].split()[:3] == ["cols", "8613800001234", "Manage"], "the mode's default is shown"
    assert "cols" in kubectl.run("get", "cams", "-n", namespace).stdout


def test_explain_shows_field_descriptions(kubectl: Kubectl) -> None:
    explained = " ".join(
        wait_for(
            lambda: kubectl.run("explain", "phonewebhook.spec", check=False).stdout,
            what="kubectl explain to find the kind",
        ).split()
    )  # kubectl wraps lines
    for text in (
        "custSpaceId",
        "-required-",
        "digits only (E.164 without",
        "HttpFlag Y/N",
        "a Secret in this namespace with the Alibaba Cloud credentials",
        "The CamsAccount or ClusterCamsAccount to call CAMS as",
    ):
        assert text in explained
    status = " ".join(kubectl.run("explain", "phonewebhook.status.observedGeneration").stdout.split())
    assert "-1 until it has seen the object" in status


def account(kind: str, name: str, namespace: str, spec: str) -> str:
    where = f", namespace: {namespace}" if kind == "CamsAccount" else ""
    return f"""
apiVersion: camswebhook.io/v1alpha1
kind: {kind}
metadata: {{name: {name}{where}}}
spec:
{spec}
"""


@pytest.mark.parametrize(
    ("kind", "spec", "message"),
    [
        (
            "PhoneWebhook",
            GOOD_SPEC + "  accountRef: {kind: CamsAccount, name: a}\n  credentialsSecretRef: {name: c}\n",
            "accountRef and credentialsSecretRef are two ways to say which credentials to use",
        ),
        (
            "PhoneWebhook",
            GOOD_SPEC + "  accountRef: {kind: Secret, name: a}\n",
            'spec.accountRef.kind: Unsupported value: "Secret"',
        ),
        ("CamsAccount", "  spaces: [space-1]\n", "spec.credentials: Required value"),
        (
            "CamsAccount",
            "  credentials: {secretRef: {name: k}}\n  spaces: []\n",
            "spaces, when given, lists at least one CustSpaceId",
        ),
        (
            "CamsAccount",
            '  credentials: {secretRef: {name: k}}\n  spaces: ["my space"]\n',
            "spaces lists CAMS space IDs (CustSpaceId)",
        ),
        (
            "ClusterCamsAccount",
            "  credentials: {secretRef: {name: k, namespace: ops}, operatorIdentity: {}}\n",
            "credentials takes exactly one of secretRef",
        ),
        ("ClusterCamsAccount", "  credentials: {}\n", "credentials takes exactly one of secretRef"),
        (
            "ClusterCamsAccount",
            "  credentials: {operatorIdentity: {}}\n  qps: 0\n",
            "spec.qps in body should be greater than 0",
        ),
        (
            "ClusterCamsAccount",
            "  credentials: {operatorIdentity: {}}\n  namespaces: []\n",
            "namespaces, when given, lists at least one namespace",
        ),
    ],
    ids=[
        "account-and-secret",
        "account-kind",
        "no-credentials",
        "empty-spaces",
        "malformed-space",
        "two-credential-sources",
        "no-credential-source",
        "zero-qps",
        "empty-namespaces",
    ],
)
def test_bad_account_manifest_is_refused_with_a_clear_message(
    kubectl: Kubectl, namespace: str, kind: str, spec: str, message: str
) -> None:
    bad = "bad"
    body = manifest(bad, namespace, spec) if kind == "PhoneWebhook" else account(kind, bad, namespace, spec)
    result = kubectl.apply(body, check=False)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_kubectl_get_cams_lists_all_three_kinds_with_their_columns(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(manifest("listed", namespace, GOOD_SPEC))
    kubectl.apply(account("CamsAccount", "team", namespace, "  credentials: {secretRef: {name: k}}\n"))
    listed = kubectl.run("get", "cams", "-A").stdout
    assert "phonewebhook.camswebhook.io/listed" in listed
    assert "camsaccount.camswebhook.io/team" in listed
    assert "clustercamsaccount.camswebhook.io/e2e-operator-identity" in listed
    header = kubectl.run("get", "camsaccounts", "-n", namespace).stdout.splitlines()[0].split()
    assert header == ["NAME", "READY", "REASON", "AGE"]
    header = kubectl.run("get", "ccamsacct", "-o", "wide").stdout.splitlines()[0].split()
    assert header == ["NAME", "CREDENTIALS", "READY", "REASON", "AGE", "SPACES", "MESSAGE", "NAMESPACES"]


# Every field that names a Kubernetes object, as a manifest around one name (issue 28).
HOSTILE_NAMES = [
    "../x",
    "a/b",
    "..",
    ".",
    "%2e%2e",
    "Upper",
    "a" * 254,
    "",
    "../../victim/secrets/shared-key",
]
NAME_ROUTES = {
    "credentialsSecretRef.name": ("PhoneWebhook", GOOD_SPEC + "  credentialsSecretRef: {{name: '{0}'}}\n"),
    "statusCallbackUrlFrom.secretKeyRef.name": (
        "PhoneWebhook",
        "  custSpaceId: s\n  phoneNumber: '8613800001234'\n"
        "  statusCallbackUrlFrom: {{secretKeyRef: {{name: '{0}', key: status}}}}\n",
    ),
    "upCallbackUrlFrom.secretKeyRef.name": (
        "PhoneWebhook",
        GOOD_SPEC + "  upCallbackUrlFrom: {{secretKeyRef: {{name: '{0}', key: inbound}}}}\n",
    ),
    "upCallbackUrlFrom.secretKeyRef.key": (
        "PhoneWebhook",
        GOOD_SPEC + "  upCallbackUrlFrom: {{secretKeyRef: {{name: hooks, key: '{0}'}}}}\n",
    ),
    "accountRef.name": ("PhoneWebhook", GOOD_SPEC + "  accountRef: {{kind: CamsAccount, name: '{0}'}}\n"),
    "credentials.secretRef.name (CamsAccount)": (
        "CamsAccount",
        "  credentials: {{secretRef: {{name: '{0}'}}}}\n",
    ),
    "credentials.secretRef.name (ClusterCamsAccount)": (
        "ClusterCamsAccount",
        "  credentials: {{secretRef: {{name: '{0}', namespace: ops}}}}\n",
    ),
    "credentials.secretRef.namespace": (
        "ClusterCamsAccount",
        "  credentials: {{secretRef: {{name: k, namespace: '{0}'}}}}\n",
    ),
}


@pytest.mark.parametrize("route", sorted(NAME_ROUTES))
def test_a_name_that_is_a_path_is_refused_on_every_route(
    kubectl: Kubectl, namespace: str, route: str
) -> None:
    """All hostile names of one route in one `kubectl apply`: each object is refused, and says what a name
    may be (or, for the empty and the over-long name, what length it may have)."""
    kind, spec = NAME_ROUTES[route]
    field = "spec." + route.split(" ")[0]
    names = [
        n for n in HOSTILE_NAMES if not (route.endswith(".key") and n == "Upper")
    ]  # a key may be upper case
    objects = {f"hostile-{i}-{namespace}": name for i, name in enumerate(names)}
    documents = [
        manifest(obj, namespace, spec.format(name))
        if kind == "PhoneWebhook"
        else account(kind, obj, namespace, spec.format(name))
        for obj, name in objects.items()
    ]
    result = kubectl.apply("---".join(documents), check=False)
    assert result.returncode != 0
    said = {
        found.group(1): line
        for line in result.stderr.splitlines()
        if (found := re.search(r'"(hostile-[^"]+)" is invalid: ', line))
    }
    for obj, name in objects.items():
        assert obj in said, f"{name!r} was accepted on {route}: {result.stdout}"
        if name == "":
            assert f'{field}: Invalid value: "": {field} in body should be at least 1 chars long' in said[obj]
        elif len(name) > 253:
            longest = 63 if field.endswith(".namespace") else 253
            assert re.search(
                rf"{re.escape(field)}: Too long: may not be (more|longer) than {longest}", said[obj]
            )
        else:  # kube-apiserver 1.30 shows a value that a CEL rule refused as its type
            assert re.search(
                rf'{re.escape(field)}: Invalid value: "({re.escape(name)}|string)": must be ', said[obj]
            )
            assert "as Kubernetes allows it" in said[obj]
