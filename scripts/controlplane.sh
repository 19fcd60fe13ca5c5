#!/usr/bin/env bash
# A local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager) for the end-to-end tests
# and the demo. The controller manager is what makes namespace deletion and garbage collection real.
#
#   scripts/controlplane.sh build          build the binaries from the Go module proxy into the cache, for
#                                          the current Kubernetes and for the oldest the chart supports
#   scripts/controlplane.sh start DIR      start them on 127.0.0.1, write DIR/kubeconfig, print it
#   scripts/controlplane.sh start-oldest DIR   the same with the oldest supported Kubernetes
#   scripts/controlplane.sh stop DIR       stop what `start DIR` started
#   scripts/controlplane.sh restart-apiserver DIR   restart kube-apiserver alone (etcd keeps the data)
#   scripts/controlplane.sh bin-dir        where the binaries are cached
#
# Why built from source: no Docker here and no download site but the Go module proxy. The binaries are
# cached outside the repository, keyed by version, so only the first run pays for the build.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.36.3}"
# The oldest Kubernetes the chart supports (Chart.yaml's kubeVersion; tests/unit/test_releases.py keeps the
# two in step): the CRDs and their CEL rules are proven on it too (tests/e2e/test_api_server_schema.py).
OLDEST_K8S_VERSION="v1.30.14"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
CACHE_ROOT="${CAMS_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cams-webhook-operator}"
# The suffix changes when the build itself changes, so a stale cache is never used.
BIN_DIR="$CACHE_ROOT/controlplane/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-b4"

die() { echo "controlplane: $*" >&2; exit 1; }

# Go 1.27's JSON rewrite makes kube-apiserver v1.36 serve malformed OpenAPI documents, so kubectl apply
# fails; build with the local Go and never let go.mod switch toolchains.
export GOTOOLCHAIN=local GOFLAGS=-mod=mod

build() {
  if [[ -x "$BIN_DIR/kube-apiserver" && -x "$BIN_DIR/kube-controller-manager" && -x "$BIN_DIR/etcd" ]]; then
    echo "controlplane: cached binaries in $BIN_DIR"; return 0
  fi
  command -v go >/dev/null || die "Go is not installed. Install Go >= 1.26 (https://go.dev/doc/install), or point KUBECONFIG at an existing cluster (kind, k3d, ...) instead."
  local work; work="$(mktemp -d)"
  # One-shot: a RETURN trap outlives the function and would fire again, on a `work` no longer set.
  trap 'rm -rf "$work"; trap - RETURN' RETURN
  echo "controlplane: building kube-apiserver, kube-controller-manager $K8S_VERSION and etcd $ETCD_VERSION (cold: about 11 minutes on 2 cores)"
  mkdir -p "$BIN_DIR.tmp" "$work/etcd" "$work/k8s"
  # Each in a module of its own, so that neither's requirements move the other's dependencies (etcd 3.6's
  # raise those of Kubernetes 1.30 past what its code builds with).
  printf 'module local/etcd\ngo 1.26\n' > "$work/etcd/go.mod"
  echo 'package tools' > "$work/etcd/tools.go"
  (
    cd "$work/etcd"
    go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null
    go build -trimpath -ldflags=-s -o "$BIN_DIR.tmp/etcd" go.etcd.io/etcd/server/v3
  )
  # k8s.io/kubernetes replaces its staging modules with local paths, which a dependent module cannot see.
  # Replace each with its published k8s.io/<name> of the same release (v1.X.Y -> v0.X.Y).
  local gomod staging_version="v0.${K8S_VERSION#v1.}"
  gomod="$(cd "$work/k8s" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  [[ -f "$gomod" ]] || die "could not download k8s.io/kubernetes@$K8S_VERSION from the Go module proxy"
  {
    echo "module local/controlplane"
    echo "go 1.26"
    grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$gomod" \
      | awk -v v="$staging_version" '{print "replace " $1 " => " $1 " " v}'
  } > "$work/k8s/go.mod"
  echo 'package tools' > "$work/k8s/tools.go"
  (
    cd "$work/k8s"
    go get "k8s.io/kubernetes@$K8S_VERSION" >/dev/null
    # Stamp the version as Kubernetes' release builds do (hack/lib/version.sh); unstamped, the server says
    # v0.0.0-master and clients that check versions (Helm's kubeVersion) refuse it.
    local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}" stamp=""
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      stamp+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
    done
    local cmd
    for cmd in kube-apiserver kube-controller-manager; do
      go build -trimpath -ldflags="-s$stamp" -o "$BIN_DIR.tmp/$cmd" "k8s.io/kubernetes/cmd/$cmd"
    done
  )
  rm -rf "$BIN_DIR"; mv "$BIN_DIR.tmp" "$BIN_DIR"
  echo "controlplane: built into $BIN_DIR"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start() {
  local dir="${1:?usage: start DIR}"
  build
  mkdir -p "$dir"; dir="$(cd "$dir" && pwd)"
  [[ -f "$dir/apiserver.pid" ]] && kill -0 "$(cat "$dir/apiserver.pid")" 2>/dev/null && die "already running in $dir"
  local etcd_port etcd_peer api_port token
  token="$(openssl rand -hex 16)"
  rm -rf "$dir/etcd-data" "$dir/certs"
  openssl genrsa -out "$dir/sa.key" 2048 2>/dev/null
  openssl rsa -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null
  echo "$token,admin,admin,system:masters" > "$dir/tokens.csv"

  # Free ports are picked, then bound by another process: another process may take one in between. A
  # bind failure is retried with new ports (it raced about once in twenty runs).
  local attempt
  for attempt in 1 2 3; do
    etcd_port="$(free_port)"; etcd_peer="$(free_port)"
    launch_etcd "$dir" "$etcd_port" "$etcd_peer"
    sleep 0.5
    kill -0 "$(cat "$dir/etcd.pid")" 2>/dev/null && break
    grep -q "address already in use" "$dir/etcd.log" && (( attempt < 3 )) && continue
    tail -n 20 "$dir/etcd.log" >&2; die "etcd did not start (log: $dir/etcd.log)"
  done
  for attempt in 1 2 3; do
    api_port="$(free_port)"
    printf 'etcd_port=%s\napi_port=%s\n' "$etcd_port" "$api_port" > "$dir/ports"
    write_kubeconfig "$dir" "$api_port" "$token"
    launch_apiserver "$dir"
    if wait_ready "$dir"; then break; fi
    (( attempt < 3 )) || { stop "$dir"; die "kube-apiserver could not bind a port (log: $dir/apiserver.log)"; }
  done
  # Namespaces are created by kube-apiserver's bootstrap controller; wait for `default` so callers can use it.
  until KUBECONFIG="$dir/kubeconfig" kubectl get namespace default >/dev/null 2>&1; do sleep 0.2; done
  launch_controller_manager "$dir"
  wait_controller_manager "$dir"
  echo "$dir/kubeconfig"
}

launch_etcd() {
  local dir="$1" port="$2" peer="$3"
  rm -rf "$dir/etcd-data"
  "$BIN_DIR/etcd" --data-dir "$dir/etcd-data" --name local \
    --listen-client-urls "http://127.0.0.1:$port" --advertise-client-urls "http://127.0.0.1:$port" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "local=http://127.0.0.1:$peer" --log-level warn \
    > "$dir/etcd.log" 2>&1 &
  echo $! > "$dir/etcd.pid"
}

write_kubeconfig() {
  local dir="$1" api_port="$2" token="$3"
  cat > "$dir/kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: "https://127.0.0.1:$api_port", certificate-authority: "$dir/certs/apiserver.crt"}
users:
- name: admin
  user: {token: "$token"}
contexts:
- name: local
  context: {cluster: local, user: admin, namespace: default}
current-context: local
KUBECONFIG
}

launch_apiserver() {
  local dir="$1" etcd_port api_port
  # shellcheck disable=SC1091
  source "$dir/ports"
  "$BIN_DIR/kube-apiserver" --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
    --cert-dir "$dir/certs" --token-auth-file "$dir/tokens.csv" --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$dir/sa.pub" \
    --service-account-signing-key-file "$dir/sa.key" --service-cluster-ip-range 10.0.0.0/24 \
    --disable-admission-plugins ServiceAccount --enable-priority-and-fairness=false \
    >> "$dir/apiserver.log" 2>&1 &
  echo $! > "$dir/apiserver.pid"
}

# No serving port (--secure-port 0): nothing to bind, so nothing to race; its health is shown by its work.
# Leader election is off: it is alone, and a Lease renewal would only add API traffic to every test.
launch_controller_manager() {
  local dir="$1"
  "$BIN_DIR/kube-controller-manager" --kubeconfig "$dir/kubeconfig" --secure-port 0 --leader-elect=false \
    --service-account-private-key-file "$dir/sa.key" --root-ca-file "$dir/certs/apiserver.crt" \
    --use-service-account-credentials=false --controllers '*' \
    >> "$dir/controller-manager.log" 2>&1 &
  echo $! > "$dir/controller-manager.pid"
}

# Ready once its serviceaccount controller has made `default/default`: its informers have synced and its
# controllers act.
wait_controller_manager() {
  local dir="$1" deadline=$((SECONDS + 90))
  until KUBECONFIG="$dir/kubeconfig" kubectl get serviceaccount default --namespace default >/dev/null 2>&1; do
    if (( SECONDS > deadline )) || ! kill -0 "$(cat "$dir/controller-manager.pid")" 2>/dev/null; then
      tail -n 30 "$dir/controller-manager.log" >&2; stop "$dir"
      die "kube-controller-manager did not start working (log: $dir/controller-manager.log)"
    fi
    sleep 0.2
  done
}

# Ready: returns 0. The port was taken by someone else: returns 1 (the caller tries another). Else dies.
wait_ready() {
  local dir="$1" deadline=$((SECONDS + 90))
  until KUBECONFIG="$dir/kubeconfig" kubectl get --raw /readyz >/dev/null 2>&1; do
    if ! kill -0 "$(cat "$dir/apiserver.pid")" 2>/dev/null && grep -q "address already in use" "$dir/apiserver.log"; then
      : > "$dir/apiserver.log"; return 1
    fi
    if (( SECONDS > deadline )) || ! kill -0 "$(cat "$dir/apiserver.pid")" 2>/dev/null; then
      tail -n 30 "$dir/apiserver.log" >&2; stop "$dir"; die "kube-apiserver did not become ready (log: $dir/apiserver.log)"
    fi
    sleep 0.5
  done
}

restart_apiserver() {
  local dir="${1:?usage: restart-apiserver DIR}" pid
  pid="$(cat "$dir/apiserver.pid")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  launch_apiserver "$dir"
  wait_ready "$dir" || die "kube-apiserver's port was taken while it restarted (log: $dir/apiserver.log)"
}

stop() {
  local dir="${1:?usage: stop DIR}" name pid
  for name in controller-manager apiserver etcd; do
    [[ -f "$dir/$name.pid" ]] || continue
    pid="$(cat "$dir/$name.pid")"
    if kill "$pid" 2>/dev/null; then
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$dir/$name.pid"
  done
}

# The oldest version's binaries have a cache directory of their own, keyed like the current one's.
oldest() { K8S_VERSION="$OLDEST_K8S_VERSION" exec "$0" "$@"; }

case "${1:-}" in
  build) build; [[ "$K8S_VERSION" == "$OLDEST_K8S_VERSION" ]] || K8S_VERSION="$OLDEST_K8S_VERSION" "$0" build ;;
  start) shift; start "$@" ;;
  start-oldest) shift; oldest start "$@" ;;
  stop) shift; stop "$@" ;;
  restart-apiserver) shift; restart_apiserver "$@" ;;
  bin-dir) echo "$BIN_DIR" ;;
  *) echo "usage: $0 build | start DIR | start-oldest DIR | stop DIR | restart-apiserver DIR | bin-dir" >&2; exit 2 ;;
esac
