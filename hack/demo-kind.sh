#!/usr/bin/env bash
# demo-kind.sh runs the demo in a real cluster (`make demo-kind`): a kind
# cluster, callfleet installed from charts/callfleet, piopiy-sim as a
# Deployment standing in for Piopiy, and config/samples applied with the
# demo-bot StreamEndpoint switched from external mode (local processes) to
# managed mode, so the echo bot and the stream gateway run as a pod.
#
# Needs docker and kind on PATH, and bin/k8s (make kube-bins) for kubectl
# and helm. Not run in CI: the development machines have no container
# runtime. See docs/demo.md.
#
#   hack/demo-kind.sh            # create/reuse the cluster, install, apply, watch
#   KIND_CLUSTER=x hack/demo-kind.sh
#   kind delete cluster --name callfleet-demo   # clean up
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

cluster=${KIND_CLUSTER:-callfleet-demo}
tag=${DEMO_TAG:-demo}
ns=demo
sys=callfleet-system
simns=piopiy-sim
kubectl=$root/bin/k8s/kubectl
helm=$root/bin/k8s/helm

die() { echo "demo-kind: $*" >&2; exit 1; }

missing=()
if ! command -v docker >/dev/null 2>&1; then
  missing+=("docker (https://docs.docker.com/engine/install/)")
elif ! docker info >/dev/null 2>&1; then
  missing+=("a running Docker daemon: the docker CLI is here but \`docker info\` cannot reach a daemon (start it, or check your access to its socket)")
fi
command -v kind >/dev/null 2>&1 || missing+=("kind (go install sigs.k8s.io/kind@latest, or https://kind.sigs.k8s.io)")
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "demo-kind: needs Docker and kind, and this machine lacks:" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  echo "Without them, \`make demo\` runs the same system as local processes." >&2
  exit 1
fi
[[ -x $kubectl && -x $helm ]] || die "$kubectl or $helm missing: run make kube-bins"

# 1. Images: manager, gateway and sim from the root Dockerfile; the bot from its own.
images=(callfleet/manager:$tag callfleet/stream-gateway:$tag callfleet/piopiy-sim:$tag callfleet/echo-bot:$tag)
echo "==> building images (${images[*]})"
docker build -t callfleet/manager:$tag .
docker build --build-arg CMD=stream-gateway -t callfleet/stream-gateway:$tag .
docker build --build-arg CMD=piopiy-sim -t callfleet/piopiy-sim:$tag .
docker build -f examples/bots/echo/Dockerfile -t callfleet/echo-bot:$tag .

# 2. Cluster.
if kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  echo "==> reusing kind cluster $cluster"
else
  echo "==> creating kind cluster $cluster"
  kind create cluster --name "$cluster" --wait 120s
fi
kubeconfig=$root/bin/demo-kind/kubeconfig
mkdir -p "$(dirname "$kubeconfig")"
kind get kubeconfig --name "$cluster" >"$kubeconfig"
export KUBECONFIG=$kubeconfig
for img in "${images[@]}"; do
  kind load docker-image --name "$cluster" "$img"
done

# 3. piopiy-sim with the sample account and the demo scenario, posting its
#    webhooks to the manager's webhook Service.
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
secret_file=config/samples/piopiy_account_secret.yaml
app_id=$(sed -n 's/^ *appId: *"\{0,1\}\([0-9]*\)"\{0,1\}.*/\1/p' "$secret_file")
app_secret=$(sed -n 's/^ *secret: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' "$secret_file")
[[ -n $app_id && -n $app_secret ]] || die "cannot read appId and secret from $secret_file"
scenario=$root/bin/demo-kind/scenario.yaml
go run ./hack/demo --print-scenario >"$scenario"

echo "==> piopiy-sim in namespace $simns"
$kubectl create namespace "$simns" --dry-run=client -o yaml | $kubectl apply -f -
$kubectl create configmap piopiy-sim-scenario -n "$simns" --from-file=scenario.yaml="$scenario" --dry-run=client -o yaml | $kubectl apply -f -
$kubectl apply -n "$simns" -f - <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: piopiy-sim
spec:
  replicas: 1
  selector:
    matchLabels: {app: piopiy-sim}
  template:
    metadata:
      labels: {app: piopiy-sim}
    spec:
      securityContext: {runAsNonRoot: true}
      containers:
        - name: sim
          image: callfleet/piopiy-sim:$tag
          args:
            - --listen=:7060
            - --apps=$app_id:$app_secret
            - --webhook-url=http://callfleet-webhook.$sys.svc:9443/piopiy/events/$token
            - --scenario=/etc/piopiy-sim/scenario.yaml
            - --redelivery-scale=0.01
          ports: [{name: http, containerPort: 7060}]
          readinessProbe:
            httpGet: {path: /sim/stats, port: 7060}
          volumeMounts: [{name: scenario, mountPath: /etc/piopiy-sim}]
      volumes:
        - name: scenario
          configMap: {name: piopiy-sim-scenario}
---
apiVersion: v1
kind: Service
metadata:
  name: piopiy-sim
spec:
  selector: {app: piopiy-sim}
  ports: [{name: http, port: 7060, targetPort: 7060}]
EOF

# 4. callfleet from the chart, pointed at the sim instead of Piopiy.
echo "==> helm install callfleet into $sys"
$kubectl create namespace "$ns" --dry-run=client -o yaml | $kubectl apply -f -
$helm upgrade --install callfleet charts/callfleet --namespace "$sys" --create-namespace \
  --set image.repository=callfleet/manager --set image.tag="$tag" \
  --set gateway.image.repository=callfleet/stream-gateway --set gateway.image.tag="$tag" \
  --set replicaCount=1 \
  --set piopiy.restURL=http://piopiy-sim.$simns.svc:7060 \
  --set piopiy.actionURL=http://piopiy-sim.$simns.svc:7060 \
  --set webhook.token="$token" \
  --set "streamToken.namespaces={$ns}" \
  --wait --timeout 5m
$kubectl rollout status deployment/piopiy-sim -n "$simns" --timeout 3m

# 5. The samples, with demo-bot run by callfleet (bot + gateway pod) instead
#    of pointing at local processes.
overlay=$root/bin/demo-kind/samples
mkdir -p "$overlay"
cat >"$overlay/kustomization.yaml" <<EOF
# Written by hack/demo-kind.sh: config/samples with demo-bot in managed mode.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../../config/samples
patches:
  - target: {kind: StreamEndpoint, name: demo-bot}
    patch: |-
      - op: remove
        path: /spec/external
      - op: remove
        path: /spec/publicURL
      - op: add
        path: /spec/image
        value: callfleet/echo-bot:$tag
      - op: add
        path: /spec/replicas
        value: 1
EOF
echo "==> kubectl apply -k $overlay -n $ns"
$kubectl apply -k "$overlay" -n "$ns"

cat <<EOF

callfleet runs in kind cluster $cluster:
  export KUBECONFIG=$kubeconfig
  kubectl get pods -A                       # manager, piopiy-sim, demo-bot (bot + gateway)
  kubectl get calls,streamendpoints,agentpools -n $ns -w
  kubectl port-forward -n $simns svc/piopiy-sim 7060 & curl -s 127.0.0.1:7060/sim/calls
Clean up: kind delete cluster --name $cluster

Watching (Ctrl-C stops watching; the cluster stays):
EOF
exec $kubectl get calls,streamendpoints,agentpools -n "$ns" -w
