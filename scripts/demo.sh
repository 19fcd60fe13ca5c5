#!/usr/bin/env bash
# The whole loop on this machine, no cloud account needed: a local Kubernetes control plane, the CAMS
# simulator and the operator, with sample PhoneWebhooks applied.
#   scripts/demo.sh          start it all (the first run builds the control plane: about 11 minutes)
#   scripts/demo.sh stop     stop it all
# CAMS_DEMO_KUBECONFIG=path uses an existing cluster (kind, k3d, ...) instead of the local control plane.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="$PWD/.local/demo"
mkdir -p "$DIR"

stop_pid() { [[ -f "$1" ]] && kill "$(cat "$1")" 2>/dev/null; rm -f "$1"; }

if [[ "${1:-}" == "stop" ]]; then
  stop_pid "$DIR/operator.pid"; stop_pid "$DIR/simulator.pid"
  [[ -f "$DIR/controlplane/apiserver.pid" ]] && scripts/controlplane.sh stop "$DIR/controlplane"
  echo "demo: stopped"; exit 0
fi

command -v kubectl >/dev/null || { echo "demo: kubectl is required (https://kubernetes.io/docs/tasks/tools/)" >&2; exit 1; }
echo "demo: installing the operator into .venv"
scripts/bootstrap.sh
"$0" stop >/dev/null

if [[ -n "${CAMS_DEMO_KUBECONFIG:-}" ]]; then
  export KUBECONFIG="$CAMS_DEMO_KUBECONFIG"
else
  export KUBECONFIG="$(scripts/controlplane.sh start "$DIR/controlplane" | tail -n 1)"
fi
kubectl apply -f crds/ >/dev/null
kubectl wait --for=condition=Established --timeout=60s \
  crd/phonewebhooks.camswebhook.io crd/camsaccounts.camswebhook.io crd/clustercamsaccounts.camswebhook.io >/dev/null

rm -f "$DIR/simulator.port"
.venv/bin/cams-simulator --port-file "$DIR/simulator.port" > "$DIR/simulator.log" 2>&1 &
echo $! > "$DIR/simulator.pid"
for _ in $(seq 50); do [[ -s "$DIR/simulator.port" ]] && break; sleep 0.2; done
[[ -s "$DIR/simulator.port" ]] || { cat "$DIR/simulator.log" >&2; echo "demo: the simulator did not start" >&2; exit 1; }
endpoint="http://127.0.0.1:$(cat "$DIR/simulator.port")"

CAMS_ENDPOINT="$endpoint" ALIBABA_CLOUD_STS_ENDPOINT="$endpoint" CAMS_ALLOW_HTTP=true \
ALIBABA_CLOUD_ACCESS_KEY_ID=demo-access-key-id ALIBABA_CLOUD_ACCESS_KEY_SECRET=demo-access-key-secret \
CAMS_LIVENESS_ENDPOINT="http://127.0.0.1:$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')/healthz" \
  .venv/bin/cams-webhook-operator > "$DIR/operator.log" 2>&1 &
echo $! > "$DIR/operator.pid"

# Accounts first, as a GitOps sync wave would apply them: a PhoneWebhook that arrives before the account it
# names is refused (AccountNotFound) until the account is seen, and that would be one more Event to read.
kubectl apply -f samples/accounts.yaml
if ! kubectl wait --for=condition=Ready --timeout=60s camsaccount/demo-team clustercamsaccount/platform >/dev/null; then
  tail -n 30 "$DIR/operator.log" >&2; echo "demo: the sample accounts did not become Ready" >&2; exit 1
fi
kubectl apply -f samples/phonewebhooks.yaml
if ! kubectl wait --for=condition=Ready --timeout=60s pwh/support-line pwh/sales-line pwh/alerts-line >/dev/null \
  || ! kubectl wait --for=condition=Stalled --timeout=60s pwh/other-team-line >/dev/null; then
  tail -n 30 "$DIR/operator.log" >&2; echo "demo: the samples did not reach their expected state" >&2; exit 1
fi
echo
kubectl get cams
echo
kubectl get events --field-selector involvedObject.name=other-team-line -o custom-columns=TYPE:.type,REASON:.reason,MESSAGE:.message
cat <<MSG

The operator applied three PhoneWebhooks to the CAMS simulator at $endpoint, through the team's
CamsAccount and the platform's default ClusterCamsAccount. It refused other-team-line before any CAMS call:
the team's account may act on demo-space only (its status and Event above say so).
  Use kubectl:      export KUBECONFIG=$KUBECONFIG
  Try:              kubectl describe pwh other-team-line;  kubectl get cams -o wide;  kubectl edit pwh sales-line
  What CAMS holds:  curl -s $endpoint/_simulator/state
  Logs:             $DIR/operator.log, $DIR/simulator.log
  Stop it all:      scripts/demo.sh stop
MSG
