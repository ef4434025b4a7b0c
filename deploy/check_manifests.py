#!/usr/bin/env python3
"""Checks of the rendered breach-check manifests that schemas cannot make.

Usage: check_manifests.py [--secret-template FILE] [--scripts-dir DIR] RENDERED.yaml...

Each RENDERED file is one whole deployment (the serving stack and its dumps
volume, as rendered by kustomize). Prints every problem found, one a line,
and exits 1 if there is any. With --scripts-dir, also writes every
container's `sh -c` script there (NAME.sh) for shellcheck.
"""

import argparse
import re
import sys

import yaml

WORKLOADS = {"Deployment", "StatefulSet", "Job", "Pod"}
GRPC_PORT = 50051
READINESS_SERVICES = {"", "breach.v1.BreachCheck"}
LIVENESS_SERVICE = "liveness"
# Kubernetes resource.Quantity (the schemas only say "string or integer").
QUANTITY = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?$")
SHARD_URL = re.compile(r"^(http|https)://([a-z0-9-]+)-([0-9]+)\.([a-z0-9-]+):([0-9]+)$")


class Checker:
    def __init__(self, source):
        self.source = source
        self.problems = []

    def fail(self, obj, message):
        kind = obj.get("kind", "?") if obj else "-"
        name = (obj or {}).get("metadata", {}).get("name", "?")
        self.problems.append(f"{self.source}: {kind}/{name}: {message}")


def pod_spec(obj):
    """The pod spec of a workload (the object itself for a Pod)."""
    if obj["kind"] == "Pod":
        return obj.get("spec", {})
    return obj.get("spec", {}).get("template", {}).get("spec", {})


def pod_labels(obj):
    if obj["kind"] == "Pod":
        return obj.get("metadata", {}).get("labels", {}) or {}
    return obj.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {}) or {}


def selects(selector, labels):
    """Whether a matchLabels selector (or a Service's selector map) selects labels."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_quantities(c, obj, node=None, path=""):
    """Every resource request, limit and sizeLimit parses as a Quantity."""
    node = obj if node is None else node
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}" if path else key
            if key in ("requests", "limits") and isinstance(value, dict):
                for res, q in value.items():
                    if not QUANTITY.match(str(q)):
                        c.fail(obj, f"{here}.{res}: {q!r} is not a Kubernetes quantity")
            elif key == "sizeLimit" and not QUANTITY.match(str(value)):
                c.fail(obj, f"{here}: {value!r} is not a Kubernetes quantity")
            else:
                check_quantities(c, obj, value, here)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            check_quantities(c, obj, value, f"{path}[{i}]")


def check_pod_security(c, obj):
    spec = pod_spec(obj)
    psc = spec.get("securityContext") or {}
    if psc.get("runAsNonRoot") is not True:
        c.fail(obj, "pod securityContext.runAsNonRoot is not true")
    if not isinstance(psc.get("runAsUser"), int) or psc.get("runAsUser") == 0:
        c.fail(obj, "pod securityContext.runAsUser must be a non-zero numeric UID")
    if (psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        c.fail(obj, "pod securityContext.seccompProfile.type is not RuntimeDefault")
    if spec.get("automountServiceAccountToken") is not False:
        c.fail(obj, "automountServiceAccountToken is not false (no pod needs the API)")
    if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
        c.fail(obj, "uses the host's namespaces")
    containers = (spec.get("initContainers") or []) + (spec.get("containers") or [])
    if not spec.get("containers"):
        c.fail(obj, "has no containers")
    for ctr in containers:
        name = ctr.get("name", "?")
        sc = ctr.get("securityContext") or {}
        run_as_user = sc.get("runAsUser", psc.get("runAsUser"))
        if sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True or run_as_user == 0:
            c.fail(obj, f"container {name} may run as root")
        if sc.get("privileged"):
            c.fail(obj, f"container {name} is privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            c.fail(obj, f"container {name}: allowPrivilegeEscalation is not false")
        if sc.get("readOnlyRootFilesystem") is not True:
            c.fail(obj, f"container {name}: readOnlyRootFilesystem is not true")
        if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
            c.fail(obj, f"container {name} does not drop ALL capabilities")
        if (sc.get("capabilities") or {}).get("add"):
            c.fail(obj, f"container {name} adds capabilities")
        res = ctr.get("resources") or {}
        if "memory" not in (res.get("requests") or {}) or "memory" not in (res.get("limits") or {}):
            c.fail(obj, f"container {name} lacks a memory request and limit")
        if "cpu" not in (res.get("requests") or {}):
            c.fail(obj, f"container {name} lacks a CPU request")


def grpc_probe(c, obj, ctr, field, services):
    probe = ctr.get(field)
    if probe is None:
        c.fail(obj, f"container {ctr.get('name')} has no {field}")
        return
    grpc = probe.get("grpc")
    if grpc is None:
        c.fail(obj, f"container {ctr.get('name')}: {field} is not a native gRPC probe")
        return
    if grpc.get("port") != GRPC_PORT:
        c.fail(obj, f"container {ctr.get('name')}: {field} port {grpc.get('port')} is not {GRPC_PORT}")
    if grpc.get("service", "") not in services:
        c.fail(obj, f"container {ctr.get('name')}: {field} asks for gRPC service "
                    f"{grpc.get('service', '')!r}, expected one of {sorted(services)}")


def check_server_probes(c, obj, startup):
    """The breach-server container of a shard or front: gRPC probes."""
    ctrs = pod_spec(obj).get("containers") or []
    if len(ctrs) != 1:
        c.fail(obj, f"expected one container, found {len(ctrs)}")
        return
    ctr = ctrs[0]
    grpc_probe(c, obj, ctr, "readinessProbe", READINESS_SERVICES)
    grpc_probe(c, obj, ctr, "livenessProbe", {LIVENESS_SERVICE})
    if startup:
        grpc_probe(c, obj, ctr, "startupProbe", READINESS_SERVICES | {LIVENESS_SERVICE})
    ports = {p.get("containerPort") for p in ctr.get("ports") or []}
    if GRPC_PORT not in ports:
        c.fail(obj, f"container {ctr.get('name')} does not declare port {GRPC_PORT}")


def args_of(obj):
    ctrs = pod_spec(obj).get("containers") or [{}]
    return [str(a) for a in (ctrs[0].get("command") or []) + (ctrs[0].get("args") or [])]


def flag_values(args, flag):
    return [args[i + 1] for i, a in enumerate(args[:-1]) if a == flag]


def check_deployment(c, objs):
    by_kind = {}
    for o in objs:
        by_kind.setdefault(o["kind"], []).append(o)
    names = {(o["kind"], o["metadata"]["name"]) for o in objs}

    for o in objs:
        check_quantities(c, o)
        if o.get("metadata", {}).get("namespace") not in (None, objs[0].get("metadata", {}).get("namespace")):
            c.fail(o, "namespace differs from the other objects")
        if o["kind"] in WORKLOADS:
            check_pod_security(c, o)
            for vol in pod_spec(o).get("volumes") or []:
                claim = (vol.get("persistentVolumeClaim") or {}).get("claimName")
                if claim and ("PersistentVolumeClaim", claim) not in names:
                    c.fail(o, f"volume {vol.get('name')} uses PVC {claim}, which is not defined")
        if o["kind"] == "Secret":
            c.fail(o, "a rendered deployment must not carry a Secret (keys are created "
                      "with kubectl create secret, never committed)")

    stss = by_kind.get("StatefulSet", [])
    jobs = by_kind.get("Job", [])
    deps = by_kind.get("Deployment", [])
    if len(stss) != 1 or len(jobs) != 1 or len(deps) != 1:
        c.fail(None, f"expected one StatefulSet, one Job and one Deployment, found "
                     f"{len(stss)}, {len(jobs)} and {len(deps)}")
        return
    sts, job, front = stss[0], jobs[0], deps[0]
    shards = sts["spec"].get("replicas", 1)

    # Shards.
    if sts["spec"].get("podManagementPolicy") != "Parallel":
        c.fail(sts, "podManagementPolicy is not Parallel")
    check_server_probes(c, sts, startup=True)
    shard_args = args_of(sts)
    if "serve" not in shard_args:
        c.fail(sts, "does not run `breach-server serve`")
    if flag_values(shard_args, "--client-ip-header") != ["x-forwarded-for"]:
        c.fail(sts, "shards must take the client address from x-forwarded-for (set by the front)")
    svc_name = sts["spec"].get("serviceName")
    svc = next((s for s in by_kind.get("Service", []) if s["metadata"]["name"] == svc_name), None)
    if svc is None:
        c.fail(sts, f"serviceName {svc_name} is not a Service of the deployment")
    else:
        if svc["spec"].get("clusterIP") != "None":
            c.fail(svc, "the shards' Service must be headless (clusterIP: None)")
        if not selects(svc["spec"].get("selector"), pod_labels(sts)):
            c.fail(svc, "selector does not select the shard pods")

    # The import Job.
    js = job["spec"]
    if js.get("completionMode") != "Indexed":
        c.fail(job, "completionMode is not Indexed")
    if js.get("completions") != shards:
        c.fail(job, f"completions {js.get('completions')} != {shards} shards (StatefulSet replicas)")
    if not 1 <= js.get("parallelism", 1) <= shards:
        c.fail(job, f"parallelism {js.get('parallelism')} is not within 1..{shards}")
    script = " ".join(args_of(job))
    for needle in ("JOB_COMPLETION_INDEX", "import", "--shard", "build", "--keys"):
        if needle not in script:
            c.fail(job, f"the import script does not mention {needle}")
    cm_names = [ref.get("configMapRef", {}).get("name")
                for ctr in pod_spec(job).get("containers") or []
                for ref in ctr.get("envFrom") or [] if "configMapRef" in ref]
    cms = [o for o in by_kind.get("ConfigMap", []) if o["metadata"]["name"] in cm_names]
    if len(cms) != 1:
        c.fail(job, f"expected the Job to read one ConfigMap of the deployment, found {cm_names}")
    else:
        data = cms[0].get("data") or {}
        if data.get("SHARD_COUNT") != str(shards):
            c.fail(cms[0], f"SHARD_COUNT {data.get('SHARD_COUNT')!r} != {shards} shards")
        for key in ("EXPECTED_CREDENTIALS", "EXPECTED_PASSWORDS"):
            if not (data.get(key) or "").isdigit() or int(data[key]) <= 0:
                c.fail(cms[0], f"{key} {data.get(key)!r} is not a positive integer")

    # The front.
    check_server_probes(c, front, startup=False)
    front_args = args_of(front)
    if "front" not in front_args:
        c.fail(front, "does not run `breach-server front`")
    urls = flag_values(front_args, "--shard")
    schemes = set()
    seen = []
    for url in urls:
        m = SHARD_URL.match(url)
        if not m:
            c.fail(front, f"--shard {url} is not SCHEME://STATEFULSET-I.SERVICE:PORT")
            continue
        scheme, sts_name, index, service, port = m.groups()
        schemes.add(scheme)
        if sts_name != sts["metadata"]["name"] or service != svc_name or int(port) != GRPC_PORT:
            c.fail(front, f"--shard {url} does not name a pod of StatefulSet "
                          f"{sts['metadata']['name']} through Service {svc_name} on port {GRPC_PORT}")
        seen.append(int(index))
    if seen != list(range(shards)):
        c.fail(front, f"--shard list names shards {seen}, expected exactly 0..{shards - 1} in order "
                      f"({shards} StatefulSet replicas)")
    if len(schemes) > 1:
        c.fail(front, "--shard URLs mix http and https")
    if "https" in schemes and not flag_values(front_args, "--shard-ca"):
        c.fail(front, "https shards without --shard-ca")

    # Autoscaler, disruption budgets, Services point at what exists.
    for hpa in by_kind.get("HorizontalPodAutoscaler", []):
        ref = hpa["spec"]["scaleTargetRef"]
        if (ref.get("kind"), ref.get("name")) != ("Deployment", front["metadata"]["name"]):
            c.fail(hpa, f"scales {ref.get('kind')}/{ref.get('name')}, not the front")
        if hpa["spec"].get("minReplicas", 1) < 2:
            c.fail(hpa, "minReplicas below 2: one front is a single point of failure")
    if not any(h for h in by_kind.get("HorizontalPodAutoscaler", [])):
        c.fail(front, "no HorizontalPodAutoscaler")
    for workload in (sts, front):
        pdbs = [p for p in by_kind.get("PodDisruptionBudget", [])
                if selects(p["spec"].get("selector", {}).get("matchLabels"), pod_labels(workload))]
        if len(pdbs) != 1:
            c.fail(workload, f"{len(pdbs)} PodDisruptionBudgets select its pods, expected 1")
    for s in by_kind.get("Service", []):
        if not any(selects(s["spec"].get("selector"), pod_labels(w)) for w in (sts, front)):
            c.fail(s, "selects neither the shards nor the front")


def check_secret_template(c, path):
    with open(path, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    if len(docs) != 1 or docs[0].get("kind") != "Secret":
        c.fail(None, f"{path}: expected exactly one Secret")
        return
    secret = docs[0]
    data = {**(secret.get("data") or {}), **(secret.get("stringData") or {})}
    for key in ("credentials.oprf-key", "passwords.oprf-key"):
        if key not in data:
            c.fail(secret, f"template lacks {key}")
    for key, value in data.items():
        if value:
            c.fail(secret, f"template holds a value for {key}: never commit key material")


def write_scripts(objs, source, directory):
    """Writes each `sh -c SCRIPT` of a container to DIRECTORY; returns the paths."""
    import os

    paths = []
    for o in objs:
        if o.get("kind") not in WORKLOADS:
            continue
        spec = pod_spec(o)
        for ctr in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            cmd = ctr.get("command") or []
            if len(cmd) >= 3 and cmd[0] == "sh" and cmd[1] == "-c":
                name = f"{os.path.basename(source)}-{o['kind']}-{o['metadata']['name']}-{ctr['name']}.sh"
                path = os.path.join(directory, name)
                with open(path, "w", encoding="utf-8") as f:
                    f.write("#!/bin/sh\n" + cmd[2])
                paths.append(path)
    return paths


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secret-template")
    parser.add_argument("--scripts-dir")
    parser.add_argument("rendered", nargs="+")
    args = parser.parse_args()
    problems = []
    checked = 0
    for path in args.rendered:
        c = Checker(path)
        with open(path, encoding="utf-8") as f:
            objs = [d for d in yaml.safe_load_all(f) if d]
        check_deployment(c, objs)
        if args.scripts_dir:
            if not write_scripts(objs, path, args.scripts_dir):
                c.fail(None, "no `sh -c` scripts found (expected the Job's and the shards' init steps)")
        problems += c.problems
        checked += len(objs)
    if args.secret_template:
        c = Checker(args.secret_template)
        check_secret_template(c, args.secret_template)
        problems += c.problems
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) in the manifests", file=sys.stderr)
        return 1
    print(f"{checked} objects in {len(args.rendered)} deployments checked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
