//! The deployment manifests against the binary itself (there is no container engine here): the
//! Helm chart `deploy/helm/coffee-rt` rendered by a real helm (`helm lint --strict` and
//! `helm template`, with the default values and with `values-production.yaml`),
//! `deploy/compose.yaml` parsed as Compose reads it, and the `Dockerfile`.
//!
//! For every coffee-rt container of the chart and of the Compose file:
//! - its command is a real subcommand, and it parses (clap) with every literal variable's value;
//! - every variable it sets is one that subcommand reads (clap's `env`, plus `COFFEE_RT_LOG` and
//!   `COFFEE_RT_LOG_FORMAT`); third-party containers (PostgreSQL, Redis, Kafka, Prometheus,
//!   Grafana) are exempt;
//! - every port (containerPort, Service targetPort, probe, scrape annotation, Compose port and
//!   health check) is the one its listen variable sets, on every interface;
//! - every probe and health-check path answers 200 on a running process of that role.
//!
//! helm is the one `scripts/tools/helm.sh` (`ensure_helm`) installs.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use clap::CommandFactory;
use serde::Deserialize;
use serde_norway::Value;

use crate::support::*;

/// Read from the environment outside clap: the log filter and format (tracing-subscriber).
const LOG_VARS: [&str; 2] = ["COFFEE_RT_LOG", "COFFEE_RT_LOG_FORMAT"];
/// The Compose services that are not coffee-rt: their variables are their own images'.
const THIRD_PARTY: [&str; 5] = ["postgres", "redis", "kafka", "prometheus", "grafana"];
/// The drain on SIGTERM (in-flight requests and v1 batches up to ~8 s, the Kafka flush 2 s) with
/// room for a slow commit: the least grace period a coffee-rt container may have.
const GRACE_SECONDS: u64 = 30;
/// How long a spawned role has to answer each probe path with 200.
const PROBE_TIMEOUT: Duration = Duration::from_secs(45);

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn chart() -> PathBuf {
    root().join("deploy/helm/coffee-rt")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `problems` holds every failed check; the test reports them all at once.
fn assert_none(what: &str, problems: &[String]) {
    assert!(problems.is_empty(), "{what}: {} problem(s):\n  - {}", problems.len(), problems.join("\n  - "));
}

// ---- what the binary reads -------------------------------------------------------------------

/// One subcommand as clap declares it: the variables it reads (with their arguments) and which of
/// them sets the address of its HTTP endpoints (/livez, /readyz, /metrics).
struct Role {
    env: BTreeMap<String, clap::Arg>,
    listen_var: Option<&'static str>,
}

struct Binary {
    roles: BTreeMap<String, Role>,
}

impl Binary {
    fn new() -> Binary {
        let cli = coffee_rt::Cli::command();
        let global: Vec<clap::Arg> = cli.get_arguments().cloned().collect();
        let mut roles = BTreeMap::new();
        for sub in cli.get_subcommands() {
            let mut env = BTreeMap::new();
            for arg in global.iter().chain(sub.get_arguments()) {
                if let Some(name) = arg.get_env() {
                    env.insert(name.to_string_lossy().into_owned(), arg.clone());
                }
            }
            let listen_var = ["COFFEE_RT_LISTEN", "COFFEE_RT_METRICS_LISTEN"].into_iter().find(|v| env.contains_key(*v));
            roles.insert(sub.get_name().to_owned(), Role { env, listen_var });
        }
        assert!(!roles.is_empty(), "coffee-rt declares subcommands");
        Binary { roles }
    }

    fn reads_anywhere(&self, var: &str) -> bool {
        LOG_VARS.contains(&var) || self.roles.values().any(|r| r.env.contains_key(var))
    }
}

// ---- a container, from whichever manifest ------------------------------------------------------

#[derive(Debug, Default)]
struct Container {
    /// Where it comes from, for the messages: "helm (production): Deployment x / serve".
    origin: String,
    /// The arguments after `coffee-rt`.
    argv: Vec<String>,
    /// Name and literal value (None: from a Secret or the host).
    env: Vec<(String, Option<String>)>,
    /// containerPort name → number.
    named_ports: BTreeMap<String, u16>,
    /// Every port something reaches this container on: (what, port).
    ports: Vec<(String, u16)>,
    /// HTTP paths probed, with their port.
    probes: Vec<(String, u16)>,
}

impl Container {
    fn env_value(&self, name: &str) -> Option<&str> {
        self.env.iter().find(|(n, _)| n == name).and_then(|(_, v)| v.as_deref())
    }
}

/// The checks every coffee-rt container gets. Returns its probe paths for the live check.
fn check_container(binary: &Binary, c: &Container, problems: &mut Vec<String>) -> Option<(Vec<String>, BTreeSet<String>)> {
    let origin = &c.origin;
    let Some(sub) = c.argv.first() else {
        problems.push(format!("{origin}: no subcommand"));
        return None;
    };
    let Some(role) = binary.roles.get(sub) else {
        problems.push(format!("{origin}: `{sub}` is not a coffee-rt subcommand (there are {:?})", binary.roles.keys().collect::<Vec<_>>()));
        return None;
    };
    // Every variable is one this subcommand reads; its literal value must parse as the flag it sets.
    let mut parsed = vec!["coffee-rt".to_owned()];
    parsed.extend(c.argv.iter().cloned());
    let mut seen = BTreeSet::new();
    for (name, value) in &c.env {
        if !seen.insert(name) {
            problems.push(format!("{origin}: {name} is set twice"));
        }
        match role.env.get(name) {
            Some(arg) => {
                let long = arg.get_long().map(|l| format!("--{l}"));
                if let (Some(long), Some(value)) = (long, value)
                    && arg.get_action().takes_values()
                    && !c.argv.iter().any(|a| a == &long || a.starts_with(&format!("{long}=")))
                {
                    parsed.push(format!("{long}={value}"));
                }
            }
            None if LOG_VARS.contains(&name.as_str()) => {}
            None => problems.push(format!("{origin}: sets {name}, which `coffee-rt {sub}` does not read")),
        }
    }
    if let Err(e) = coffee_rt::Cli::command().try_get_matches_from(&parsed) {
        problems.push(format!("{origin}: `{}` does not parse: {}", parsed.join(" "), e.render().to_string().trim()));
    }
    // The listen address: from the variable, else the flag's default.
    let listen = role.listen_var.and_then(|var| {
        let value = c
            .env_value(var)
            .map(str::to_owned)
            .or_else(|| role.env[var].get_default_values().first().map(|d| d.to_string_lossy().into_owned()));
        value.map(|v| (var, v))
    });
    let reached = !c.ports.is_empty() || !c.probes.is_empty();
    match listen {
        None if reached => problems.push(format!(
            "{origin}: ports {:?} / probes {:?}, but `coffee-rt {sub}` listens on nothing (no {} set)",
            c.ports,
            c.probes,
            role.listen_var.unwrap_or("listen variable")
        )),
        None => {}
        Some((var, value)) => match value.parse::<SocketAddr>() {
            Err(e) => problems.push(format!("{origin}: {var}={value} is not an address: {e}")),
            Ok(addr) => {
                if reached && !addr.ip().is_unspecified() {
                    problems.push(format!("{origin}: {var}={value} is not reachable from outside the container (use 0.0.0.0)"));
                }
                if var == "COFFEE_RT_LISTEN" && !addr.ip().is_loopback() {
                    check_tokens(c, problems);
                }
                for (what, port) in &c.ports {
                    if *port != addr.port() {
                        problems.push(format!("{origin}: {what} is {port}, but {var}={value}"));
                    }
                }
                for (path, port) in &c.probes {
                    if *port != addr.port() {
                        problems.push(format!("{origin}: the probe of {path} is on port {port}, but {var}={value}"));
                    }
                }
            }
        },
    }
    let paths: BTreeSet<String> = c.probes.iter().map(|(p, _)| p.clone()).collect();
    (!paths.is_empty()).then(|| (c.argv.clone(), paths))
}

/// An API off loopback refuses to start without both tokens (a value, a Secret or a file), unless
/// it is told `COFFEE_RT_INSECURE_NO_AUTH`.
fn check_tokens(c: &Container, problems: &mut Vec<String>) {
    let set = |name: &str| c.env.iter().any(|(n, _)| n == name || *n == format!("{name}_FILE"));
    if c.env_value("COFFEE_RT_INSECURE_NO_AUTH") == Some("true") {
        return;
    }
    for token in ["COFFEE_RT_INGEST_TOKEN", "COFFEE_RT_READ_TOKEN"] {
        if !set(token) {
            problems.push(format!("{}: listens off loopback without {token} (or {token}_FILE): it would refuse to start", c.origin));
        }
    }
}

// ---- helm --------------------------------------------------------------------------------------

/// helm: the one scripts/tools/helm.sh caches ($COFFEE_RT_CACHE/bin), else one on PATH.
fn helm_bin() -> PathBuf {
    let cache = std::env::var_os("COFFEE_RT_CACHE").map(PathBuf::from).or_else(|| {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")));
        base.map(|b| b.join("coffee-rt"))
    });
    let on_path =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).map(|d| d.join("helm")).collect::<Vec<_>>()).unwrap_or_default();
    cache.map(|c| c.join("bin/helm")).into_iter().chain(on_path).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!(
            "helm is not installed (neither in $COFFEE_RT_CACHE/bin, ~/.cache/coffee-rt/bin, nor on PATH): run \
             `scripts/tools/helm.sh`, whose ensure_helm builds helm v3 with `go install` into ~/.cache/coffee-rt/bin"
        )
    })
}

fn helm(args: &[&str]) -> String {
    let out = Command::new(helm_bin()).args(args).output().expect("helm runs");
    assert!(
        out.status.success(),
        "helm {} failed ({}):\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("helm prints UTF-8")
}

fn parse_documents(text: &str, what: &str) -> Vec<Value> {
    let mut docs = Vec::new();
    for doc in serde_norway::Deserializer::from_str(text) {
        let value = Value::deserialize(doc).unwrap_or_else(|e| panic!("{what} is not YAML: {e}"));
        if !value.is_null() {
            docs.push(value);
        }
    }
    docs
}

/// `helm lint --strict` and `helm template` with the default values or a values file of the chart.
fn render(values: Option<&str>) -> Vec<Value> {
    let chart = chart();
    let chart = chart.to_str().expect("UTF-8 path");
    let values_path = values.map(|v| format!("{chart}/{v}"));
    let mut extra: Vec<&str> = Vec::new();
    if let Some(v) = &values_path {
        extra.extend(["-f", v.as_str()]);
    }
    let lint = helm(&[&["lint", "--strict", chart][..], &extra[..]].concat());
    assert!(lint.contains("0 chart(s) failed"), "helm lint: {lint}");
    let rendered = helm(&[&["template", "coffee-rt", chart, "--namespace", "coffee"][..], &extra[..]].concat());
    parse_documents(&rendered, &format!("helm template ({})", values.unwrap_or("default values")))
}

fn s(v: &Value) -> Option<&str> {
    v.as_str()
}

fn name_of(doc: &Value) -> String {
    format!("{} {}", s(&doc["kind"]).unwrap_or("?"), s(&doc["metadata"]["name"]).unwrap_or("?"))
}

fn labels(v: &Value) -> BTreeMap<String, String> {
    v.as_mapping().map(|m| m.iter().filter_map(|(k, v)| Some((k.as_str()?.to_owned(), scalar(v)?))).collect()).unwrap_or_default()
}

/// A YAML scalar as the string a process sees.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn selects(selector: &BTreeMap<String, String>, pod: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| pod.get(k) == Some(v))
}

/// A pod template of a rendered workload.
struct Pod {
    owner: String,
    kind: String,
    doc: Value,
    labels: BTreeMap<String, String>,
    containers: Vec<Container>,
}

impl Pod {
    fn role(&self) -> Option<&str> {
        self.containers.first().and_then(|c| c.argv.first()).map(String::as_str)
    }
}

fn helm_container(origin: &str, c: &Value, dockerfile_cmd: &[String], problems: &mut Vec<String>) -> Container {
    let name = s(&c["name"]).unwrap_or("?");
    let origin = format!("{origin} / {name}");
    let strings = |v: &Value| -> Vec<String> { v.as_sequence().map(|s| s.iter().filter_map(scalar).collect()).unwrap_or_default() };
    let command = strings(&c["command"]);
    let mut argv = match command.split_first() {
        Some((bin, rest)) => {
            if Path::new(bin).file_name().and_then(|n| n.to_str()) != Some("coffee-rt") {
                problems.push(format!("{origin}: command {command:?} does not run coffee-rt"));
            }
            rest.to_vec()
        }
        None => Vec::new(),
    };
    argv.extend(strings(&c["args"]));
    if command.is_empty() && argv.is_empty() {
        argv = dockerfile_cmd.to_vec();
    }
    if !c["envFrom"].is_null() {
        problems.push(format!("{origin}: envFrom hides the variables' names; set each one under env"));
    }
    let mut env = Vec::new();
    for e in c["env"].as_sequence().into_iter().flatten() {
        let Some(n) = s(&e["name"]) else { continue };
        match &e["value"] {
            Value::String(v) => env.push((n.to_owned(), Some(v.clone()))),
            Value::Null => env.push((n.to_owned(), None)),
            other => {
                problems.push(format!("{origin}: {n}'s value {other:?} is not a string (Kubernetes refuses it)"));
                env.push((n.to_owned(), scalar(other)));
            }
        }
    }
    let mut container = Container { origin: origin.clone(), argv, env, ..Default::default() };
    for p in c["ports"].as_sequence().into_iter().flatten() {
        let Some(port) = p["containerPort"].as_u64().and_then(|p| u16::try_from(p).ok()) else {
            problems.push(format!("{origin}: a port without a containerPort"));
            continue;
        };
        container.ports.push(("containerPort".into(), port));
        if let Some(n) = s(&p["name"]) {
            container.named_ports.insert(n.to_owned(), port);
        }
    }
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        let p = &c[probe];
        if p.is_null() {
            continue;
        }
        let get = &p["httpGet"];
        let Some(path) = s(&get["path"]) else {
            problems.push(format!("{origin}: {probe} is not an HTTP GET of a path"));
            continue;
        };
        match resolve_port(&get["port"], &container.named_ports) {
            Some(port) => container.probes.push((path.to_owned(), port)),
            None => problems.push(format!("{origin}: {probe} port {:?} is no port of the container", get["port"])),
        }
    }
    container
}

fn resolve_port(port: &Value, named: &BTreeMap<String, u16>) -> Option<u16> {
    match port {
        Value::Number(n) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
        Value::String(name) => named.get(name).copied().or_else(|| name.parse().ok()),
        _ => None,
    }
}

/// The pods of a rendered chart, with the Services, scrape annotations and ServiceMonitors that
/// reach them folded into their containers' ports and probes; checks the chart's wiring.
fn helm_pods(docs: &[Value], what: &str, dockerfile_cmd: &[String], problems: &mut Vec<String>) -> Vec<Pod> {
    let mut pods = Vec::new();
    for doc in docs {
        let kind = s(&doc["kind"]).unwrap_or_default();
        let template = match kind {
            "Deployment" | "StatefulSet" | "DaemonSet" | "Job" => &doc["spec"]["template"],
            "CronJob" => &doc["spec"]["jobTemplate"]["spec"]["template"],
            _ => continue,
        };
        let owner = format!("helm ({what}): {}", name_of(doc));
        let spec = &template["spec"];
        let containers = spec["initContainers"]
            .as_sequence()
            .into_iter()
            .flatten()
            .chain(spec["containers"].as_sequence().into_iter().flatten())
            .map(|c| helm_container(&owner, c, dockerfile_cmd, problems))
            .collect();
        pods.push(Pod { owner, kind: kind.to_owned(), doc: doc.clone(), labels: labels(&template["metadata"]["labels"]), containers });
    }
    // Scrape annotations.
    for pod in &mut pods {
        let template = pod.doc["spec"]["template"]["metadata"]["annotations"].clone();
        if let Some(port) = scalar(&template["prometheus.io/port"]) {
            let path = scalar(&template["prometheus.io/path"]).unwrap_or_else(|| "/metrics".into());
            match port.parse::<u16>() {
                Ok(port) => {
                    for c in &mut pod.containers {
                        c.ports.push(("the prometheus.io/port annotation".into(), port));
                        c.probes.push((path.clone(), port));
                    }
                }
                Err(_) => problems.push(format!("{}: prometheus.io/port {port:?} is not a port", pod.owner)),
            }
        }
    }
    // Services: each selects pods, and each targetPort is a port of theirs.
    let services: Vec<&Value> = docs.iter().filter(|d| s(&d["kind"]) == Some("Service")).collect();
    let mut service_pods: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for svc in &services {
        let svc_name = s(&svc["metadata"]["name"]).unwrap_or("?").to_owned();
        let selector = labels(&svc["spec"]["selector"]);
        let matched: Vec<usize> = (0..pods.len()).filter(|&i| pods[i].kind != "Job" && selects(&selector, &pods[i].labels)).collect();
        if matched.is_empty() {
            problems.push(format!("helm ({what}): {} selects no pod", name_of(svc)));
        }
        for p in svc["spec"]["ports"].as_sequence().into_iter().flatten() {
            let target = if p["targetPort"].is_null() { &p["port"] } else { &p["targetPort"] };
            for &i in &matched {
                let mut found = false;
                for c in &mut pods[i].containers {
                    if let Some(port) = resolve_port(target, &c.named_ports) {
                        c.ports.push((format!("Service {svc_name}'s targetPort {target:?}"), port));
                        found = true;
                    }
                }
                if !found {
                    problems.push(format!("helm ({what}): Service {svc_name}'s targetPort {target:?} is no port of {}", pods[i].owner));
                }
            }
        }
        service_pods.insert(svc_name, matched);
    }
    // ServiceMonitors: every endpoint's port is on a selected Service; its path must answer there;
    // the job label is the role's subcommand (the alerts and the board select by it).
    for sm in docs.iter().filter(|d| s(&d["kind"]) == Some("ServiceMonitor")) {
        let selector = labels(&sm["spec"]["selector"]["matchLabels"]);
        let selected: Vec<&&Value> = services.iter().filter(|svc| selects(&selector, &labels(&svc["metadata"]["labels"]))).collect();
        for ep in sm["spec"]["endpoints"].as_sequence().into_iter().flatten() {
            let port_name = s(&ep["port"]).unwrap_or_default();
            let path = s(&ep["path"]).unwrap_or("/metrics");
            let mut used = false;
            for svc in &selected {
                let Some(p) = svc["spec"]["ports"].as_sequence().into_iter().flatten().find(|p| s(&p["name"]) == Some(port_name)) else {
                    continue;
                };
                used = true;
                let svc_name = s(&svc["metadata"]["name"]).unwrap_or("?");
                let target = if p["targetPort"].is_null() { &p["port"] } else { &p["targetPort"] };
                for &i in service_pods.get(svc_name).into_iter().flatten() {
                    let role = pods[i].role().map(str::to_owned);
                    if let Some(job_label) = s(&sm["spec"]["jobLabel"]) {
                        let job = labels(&svc["metadata"]["labels"]).get(job_label).cloned();
                        if job != role {
                            problems.push(format!(
                                "helm ({what}): {} gives {} the job {job:?}, but its pods run {role:?}",
                                name_of(sm),
                                name_of(svc)
                            ));
                        }
                    }
                    for c in &mut pods[i].containers {
                        if let Some(port) = resolve_port(target, &c.named_ports) {
                            c.probes.push((path.to_owned(), port));
                        }
                    }
                }
            }
            if !used {
                problems.push(format!("helm ({what}): {} scrapes port {port_name:?}, which no selected Service has", name_of(sm)));
            }
            // serve's /metrics needs the read token: the endpoint sends the one serve reads.
            let scrapes_serve = selected.iter().any(|svc| {
                labels(&svc["metadata"]["labels"]).get("app.kubernetes.io/component").map(String::as_str) == Some("serve")
                    && svc["spec"]["ports"].as_sequence().into_iter().flatten().any(|p| s(&p["name"]) == Some(port_name))
            });
            if scrapes_serve {
                let sent = &ep["authorization"]["credentials"];
                let sent = (s(&sent["name"]), s(&sent["key"]));
                let read = pods
                    .iter()
                    .filter(|p| p.role() == Some("serve"))
                    .flat_map(|p| p.doc["spec"]["template"]["spec"]["containers"][0]["env"].as_sequence().cloned().unwrap_or_default());
                let read: Vec<(Option<String>, Option<String>)> = read
                    .filter(|e| s(&e["name"]) == Some("COFFEE_RT_READ_TOKEN"))
                    .map(|e| {
                        let r = &e["valueFrom"]["secretKeyRef"];
                        (s(&r["name"]).map(str::to_owned), s(&r["key"]).map(str::to_owned))
                    })
                    .collect();
                let matches =
                    sent.0.is_some() && !read.is_empty() && read.iter().all(|(n, k)| n.as_deref() == sent.0 && k.as_deref() == sent.1);
                if !matches {
                    problems.push(format!(
                        "helm ({what}): {} scrapes serve's /metrics with credentials {sent:?}, but serve reads its read token from {read:?}",
                        name_of(sm)
                    ));
                }
            }
        }
    }
    // Ingress backends are Services with that port.
    for ing in docs.iter().filter(|d| s(&d["kind"]) == Some("Ingress")) {
        for rule in ing["spec"]["rules"].as_sequence().into_iter().flatten() {
            for path in rule["http"]["paths"].as_sequence().into_iter().flatten() {
                let backend = &path["backend"]["service"];
                let name = s(&backend["name"]).unwrap_or_default();
                let Some(svc) = services.iter().find(|svc| s(&svc["metadata"]["name"]) == Some(name)) else {
                    problems.push(format!("helm ({what}): {} routes to Service {name:?}, which is not rendered", name_of(ing)));
                    continue;
                };
                let has_port = svc["spec"]["ports"].as_sequence().into_iter().flatten().any(|p| {
                    (!backend["port"]["name"].is_null() && p["name"] == backend["port"]["name"])
                        || (!backend["port"]["number"].is_null() && p["port"] == backend["port"]["number"])
                });
                if !has_port {
                    problems.push(format!("helm ({what}): {} routes to a port Service {name} does not have", name_of(ing)));
                }
            }
        }
    }
    pods
}

/// The chart's own rules: roles, replicas, hooks, autoscaling, disruption budgets, Secrets.
fn check_chart(docs: &[Value], pods: &[Pod], what: &str, problems: &mut Vec<String>) {
    // A message naming a pod carries its origin ("helm (…): Deployment …") already.
    let mut p = |m: String| problems.push(if m.starts_with("helm (") { m } else { format!("helm ({what}): {m}") });
    let by_role = |role: &'static str| pods.iter().filter(move |pod| pod.role() == Some(role));
    for role in ["serve", "worker", "processor", "aggregate"] {
        let deployments: Vec<&Pod> = by_role(role).filter(|p| p.kind == "Deployment").collect();
        if deployments.len() != 1 {
            p(format!("{} Deployments run `coffee-rt {role}` (one expected)", deployments.len()));
        }
    }
    for pod in pods {
        let spec = &pod.doc["spec"]["template"]["spec"];
        if pod.kind == "Deployment" {
            match spec["terminationGracePeriodSeconds"].as_u64() {
                Some(g) if g >= GRACE_SECONDS => {}
                other => p(format!("{}: terminationGracePeriodSeconds {other:?} is shorter than the drain ({GRACE_SECONDS} s)", pod.owner)),
            }
        }
        let non_root = spec["securityContext"]["runAsNonRoot"].as_bool() == Some(true)
            || spec["containers"].as_sequence().into_iter().flatten().all(|c| c["securityContext"]["runAsNonRoot"].as_bool() == Some(true));
        if !non_root {
            p(format!("{}: runAsNonRoot is not set", pod.owner));
        }
    }
    // The aggregator: one replica, never two during a rollout, never autoscaled.
    let hpas: Vec<&Value> = docs.iter().filter(|d| s(&d["kind"]) == Some("HorizontalPodAutoscaler")).collect();
    let hpa_targets: BTreeSet<&str> = hpas.iter().filter_map(|h| s(&h["spec"]["scaleTargetRef"]["name"])).collect();
    for agg in by_role("aggregate") {
        let name = s(&agg.doc["metadata"]["name"]).unwrap_or_default();
        if agg.doc["spec"]["replicas"].as_u64() != Some(1) {
            p(format!("{}: the v1 aggregator must run as exactly one replica", agg.owner));
        }
        if s(&agg.doc["spec"]["strategy"]["type"]) != Some("Recreate") {
            p(format!("{}: a RollingUpdate would run two aggregators at once; use Recreate", agg.owner));
        }
        if hpa_targets.contains(name) {
            p(format!("{}: the aggregator is autoscaled", agg.owner));
        }
    }
    // Processors: at most one per partition does work.
    for proc in by_role("processor") {
        let partitions = proc.containers[0].env_value("COFFEE_RT_KAFKA_PARTITIONS").and_then(|v| v.parse::<u64>().ok()).unwrap_or(4);
        match proc.doc["spec"]["replicas"].as_u64() {
            Some(r) if r <= partitions => {}
            other => p(format!("{}: {other:?} replicas for {partitions} partitions", proc.owner)),
        }
    }
    // serve scales on CPU.
    let serve_names: BTreeSet<&str> = by_role("serve").filter_map(|pod| s(&pod.doc["metadata"]["name"])).collect();
    let serve_hpa = hpas.iter().find(|h| serve_names.contains(s(&h["spec"]["scaleTargetRef"]["name"]).unwrap_or_default()));
    match serve_hpa {
        None => p("no HorizontalPodAutoscaler scales serve".into()),
        Some(h) => {
            let on_cpu = h["spec"]["metrics"].as_sequence().into_iter().flatten().any(|m| s(&m["resource"]["name"]) == Some("cpu"));
            if !on_cpu {
                p(format!("{} does not scale on CPU", name_of(h)));
            }
            if by_role("serve").any(|pod| !pod.doc["spec"]["replicas"].is_null()) {
                p("serve's Deployment sets replicas although an HPA owns them".into());
            }
        }
    }
    for hpa in &hpas {
        let target = s(&hpa["spec"]["scaleTargetRef"]["name"]).unwrap_or_default();
        if !pods.iter().any(|pod| s(&pod.doc["metadata"]["name"]) == Some(target)) {
            p(format!("{} scales {target:?}, which is not rendered", name_of(hpa)));
        }
    }
    // Disruption budgets select Deployments, never the single aggregator.
    for pdb in docs.iter().filter(|d| s(&d["kind"]) == Some("PodDisruptionBudget")) {
        let selector = labels(&pdb["spec"]["selector"]["matchLabels"]);
        let selected: Vec<&Pod> = pods.iter().filter(|pod| pod.kind == "Deployment" && selects(&selector, &pod.labels)).collect();
        if selected.is_empty() {
            p(format!("{} selects no pod", name_of(pdb)));
        }
        if selected.iter().any(|pod| pod.role() == Some("aggregate")) {
            p(format!("{} covers the single aggregator: it would block every node drain", name_of(pdb)));
        }
    }
    // The migrations: a pre-install/pre-upgrade hook Job running `migrate`.
    let migrate: Vec<&Pod> = by_role("migrate").collect();
    if migrate.len() != 1 || migrate[0].kind != "Job" {
        p(format!("the migrations are not one Job ({} pods run `migrate`)", migrate.len()));
    }
    let hook_weight =
        |d: &Value| scalar(&d["metadata"]["annotations"]["helm.sh/hook-weight"]).and_then(|w| w.parse::<i64>().ok()).unwrap_or(0);
    let hooks = |d: &Value| -> BTreeSet<String> {
        scalar(&d["metadata"]["annotations"]["helm.sh/hook"])
            .map(|h| h.split(',').map(|x| x.trim().to_owned()).collect())
            .unwrap_or_default()
    };
    for job in &migrate {
        let h = hooks(&job.doc);
        if !(h.contains("pre-install") && h.contains("pre-upgrade")) {
            p(format!("{}: helm.sh/hook is {h:?}, not pre-install,pre-upgrade", job.owner));
        }
    }
    // Secrets: a referenced Secret the chart renders has the key, and exists when the pod runs.
    let secrets: BTreeMap<&str, &Value> =
        docs.iter().filter(|d| s(&d["kind"]) == Some("Secret")).filter_map(|d| Some((s(&d["metadata"]["name"])?, d))).collect();
    for pod in pods {
        let spec = &pod.doc["spec"]["template"]["spec"];
        for c in spec["containers"].as_sequence().into_iter().flatten() {
            for e in c["env"].as_sequence().into_iter().flatten() {
                let r = &e["valueFrom"]["secretKeyRef"];
                let (Some(name), Some(key)) = (s(&r["name"]), s(&r["key"])) else { continue };
                let Some(secret) = secrets.get(name) else { continue };
                if secret["stringData"][key].is_null() && secret["data"][key].is_null() {
                    p(format!("{}: Secret {name} has no key {key}", pod.owner));
                }
                let (pod_hooks, secret_hooks) = (hooks(&pod.doc), hooks(secret));
                if pod_hooks.is_empty() {
                    if !secret_hooks.is_empty() {
                        p(format!("{}: reads the hook Secret {name}, which Helm deletes after the hooks", pod.owner));
                    }
                } else if !pod_hooks.is_subset(&secret_hooks) || hook_weight(secret) >= hook_weight(&pod.doc) {
                    p(format!("{}: the hook reads Secret {name}, which does not exist yet when the hook runs", pod.owner));
                }
            }
        }
    }
}

// ---- Compose -----------------------------------------------------------------------------------

fn compose() -> Value {
    let path = root().join("deploy/compose.yaml");
    let mut value: Value = serde_norway::from_str(&read(&path)).unwrap_or_else(|e| panic!("deploy/compose.yaml is not YAML: {e}"));
    value.apply_merge().expect("deploy/compose.yaml's merge keys resolve");
    value
}

fn compose_strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
        Value::Sequence(seq) => seq.iter().filter_map(scalar).collect(),
        _ => Vec::new(),
    }
}

fn compose_env(v: &Value) -> Vec<(String, Option<String>)> {
    match v {
        Value::Mapping(m) => m.iter().filter_map(|(k, v)| Some((k.as_str()?.to_owned(), scalar(v).map(|v| interpolate(&v))))).collect(),
        Value::Sequence(seq) => seq
            .iter()
            .filter_map(|e| e.as_str())
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_owned(), Some(interpolate(v))),
                None => (e.to_owned(), None),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// A value as Compose passes it when the variables it names are unset: `${X:-default}` and
/// `${X-default}` become the default, `${X}` nothing.
fn interpolate(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('}') else { break };
        let inner = &rest[start + 2..start + end];
        out.push_str(inner.split_once(":-").or_else(|| inner.split_once('-')).map_or("", |(_, d)| d));
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out
}

/// The container side of a Compose port: "8005", "8005:8005", "127.0.0.1:8005:8005/tcp", {target}.
fn compose_port(v: &Value) -> Option<u16> {
    match v {
        Value::Mapping(_) => v["target"].as_u64().and_then(|p| u16::try_from(p).ok()),
        other => scalar(other)?.rsplit(':').next()?.split('/').next()?.parse().ok(),
    }
}

fn compose_container(name: &str, svc: &Value, dockerfile_cmd: &[String], problems: &mut Vec<String>) -> Container {
    let origin = format!("compose: service {name}");
    let entrypoint = compose_strings(&svc["entrypoint"]);
    if !entrypoint.is_empty() && entrypoint != ["coffee-rt"] {
        problems.push(format!("{origin}: entrypoint {entrypoint:?} is not coffee-rt"));
    }
    let mut argv = compose_strings(&svc["command"]);
    if argv.is_empty() {
        argv = dockerfile_cmd.to_vec();
    }
    let mut c = Container { origin: origin.clone(), argv, env: compose_env(&svc["environment"]), ..Default::default() };
    for p in svc["ports"].as_sequence().into_iter().flatten().chain(svc["expose"].as_sequence().into_iter().flatten()) {
        match compose_port(p) {
            Some(port) => c.ports.push((format!("port {}", scalar(p).unwrap_or_else(|| format!("{p:?}"))), port)),
            None => problems.push(format!("{origin}: port {p:?} does not parse")),
        }
    }
    let test = compose_strings(&svc["healthcheck"]["test"]);
    if !test.is_empty() {
        match test.iter().find(|t| t.starts_with("http://")).map(|u| reqwest::Url::parse(u)) {
            Some(Ok(url)) => {
                if !matches!(url.host_str(), Some("127.0.0.1" | "localhost")) {
                    problems.push(format!("{origin}: the health check asks {url}, not the container itself"));
                }
                c.probes.push((url.path().to_owned(), url.port_or_known_default().unwrap_or(80)));
            }
            _ => problems.push(format!("{origin}: the health check {test:?} asks no http:// URL of the role")),
        }
    }
    c
}

fn service<'a>(doc: &'a Value, name: &str) -> &'a Value {
    &doc["services"][name]
}

fn duration_seconds(v: &Value) -> Option<u64> {
    let text = scalar(v)?;
    humantime::parse_duration(&text).ok().map(|d| d.as_secs())
}

/// The Compose file's own rules: profiles, the migrate job, dependencies, the services' addresses.
fn check_compose(doc: &Value, containers: &BTreeMap<String, Container>, problems: &mut Vec<String>) {
    let mut p = |m: String| problems.push(format!("compose: {m}"));
    let services = doc["services"].as_mapping().expect("compose has services");
    let names: BTreeSet<String> = services.keys().filter_map(|k| k.as_str().map(str::to_owned)).collect();
    let svc = |n: &str| service(doc, n);
    let profiles = |n: &str| compose_strings(&service(doc, n)["profiles"]);
    let active = |n: &str, profile: &str| {
        let ps = profiles(n);
        ps.is_empty() || ps.iter().any(|x| x == profile)
    };
    let with_role = |role: &str| -> Vec<String> {
        containers.iter().filter(|(_, c)| c.argv.first().map(String::as_str) == Some(role)).map(|(n, _)| n.clone()).collect()
    };
    // Profiles choose the paths, as the papers do: v1 = serve + aggregate; v2 = + worker; v3 = + kafka + processor.
    let serves = with_role("serve");
    if serves.len() != 2 {
        p(format!("{} serve services (two expected, on their own ports): {serves:?}", serves.len()));
    }
    let listen_ports: BTreeSet<Option<&str>> = serves.iter().map(|n| containers[n].env_value("COFFEE_RT_LISTEN")).collect();
    if listen_ports.len() != serves.len() {
        p(format!("the serve services do not listen on their own ports: {listen_ports:?}"));
    }
    let expect: [(&str, [bool; 3]); 5] = [
        ("serve", [true; 3]),
        ("aggregate", [true; 3]),
        ("worker", [false, true, true]),
        ("processor", [false, false, true]),
        ("kafka", [false, false, true]),
    ];
    for (role, want) in expect {
        let services = if role == "kafka" { vec!["kafka".to_owned()] } else { with_role(role) };
        if services.is_empty() {
            p(format!("no service runs {role}"));
        }
        for n in &services {
            for (profile, want) in ["v1", "v2", "v3"].iter().zip(want) {
                if active(n, profile) != want {
                    p(format!("{n} (profiles {:?}) is {} under --profile {profile}", profiles(n), if want { "off" } else { "on" }));
                }
            }
        }
    }
    // The migrate job runs first and once; every other role waits for its success.
    let migrates = with_role("migrate");
    if migrates.len() != 1 {
        p(format!("{} services run migrate (one expected)", migrates.len()));
    }
    for m in &migrates {
        if scalar(&svc(m)["restart"]).as_deref() != Some("no") {
            p(format!("{m}: a job, restart must be \"no\""));
        }
        if s(&svc(m)["depends_on"]["postgres"]["condition"]) != Some("service_healthy") {
            p(format!("{m}: does not wait for postgres to be healthy"));
        }
        for (n, _) in containers.iter().filter(|(n, _)| *n != m) {
            if s(&svc(n)["depends_on"][m.as_str()]["condition"]) != Some("service_completed_successfully") {
                p(format!("{n}: does not wait for {m} to complete successfully"));
            }
        }
    }
    for n in with_role("processor") {
        if s(&svc(&n)["depends_on"]["kafka"]["condition"]) != Some("service_healthy") {
            p(format!("{n}: does not wait for kafka to be healthy"));
        }
    }
    for (n, _) in containers.iter().filter(|(_, c)| c.argv.first().map(String::as_str) != Some("migrate")) {
        match duration_seconds(&svc(n)["stop_grace_period"]) {
            Some(g) if g >= GRACE_SECONDS => {}
            other => p(format!("{n}: stop_grace_period {other:?} s is shorter than the drain ({GRACE_SECONDS} s)")),
        }
        if svc(n)["healthcheck"].is_null() {
            p(format!("{n}: no health check"));
        }
    }
    // The third-party services, as the design asks for them.
    if !compose_strings(&svc("redis")["command"]).windows(2).any(|w| w == ["--appendonly", "yes"]) {
        p("redis runs without its append-only file (a v2 acknowledgement relies on it)".into());
    }
    if s(&svc("kafka")["image"]) != Some("apache/kafka:4.1.1") {
        p(format!("kafka's image is {:?}, not the official apache/kafka:4.1.1", svc("kafka")["image"]));
    }
    let kafka_env: BTreeMap<String, Option<String>> = compose_env(&svc("kafka")["environment"]).into_iter().collect();
    if kafka_env.get("KAFKA_PROCESS_ROLES").cloned().flatten().as_deref() != Some("broker,controller") {
        p("kafka is not a single KRaft node (KAFKA_PROCESS_ROLES=broker,controller)".into());
    }
    let advertised: BTreeSet<String> = kafka_env
        .get("KAFKA_ADVERTISED_LISTENERS")
        .cloned()
        .flatten()
        .unwrap_or_default()
        .split(',')
        .filter_map(|l| l.split_once("://").map(|(_, a)| a.to_owned()))
        .collect();
    // Each coffee-rt role reaches the other services by their Compose names.
    for (n, c) in containers {
        if let Some(brokers) = c.env_value("KAFKA_BROKERS") {
            for b in brokers.split(',') {
                if !advertised.contains(b) {
                    p(format!("{n}: KAFKA_BROKERS {b} is not what kafka advertises ({advertised:?})"));
                }
            }
        }
        for (var, service) in [("DATABASE_URL", "postgres"), ("REDIS_URL", "redis")] {
            if let Some(url) = c.env_value(var) {
                match reqwest::Url::parse(url) {
                    Ok(u) if u.host_str() == Some(service) && names.contains(service) => {}
                    _ => p(format!("{n}: {var}={url} does not name the {service} service")),
                }
            }
        }
    }
    // Prometheus scrapes the API with the read token the API reads: prometheus.yml's serve job
    // names `credentials_file: read-token`, and Compose mounts it beside prometheus.yml from the
    // same value.
    let prometheus_yml = read(&root().join("deploy/prometheus/prometheus.yml"));
    if !prometheus_yml.contains("credentials_file: read-token") {
        p("prometheus.yml's serve job sends no read token (credentials_file: read-token)".into());
    }
    let mounted = svc("prometheus")["configs"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|c| s(&c["target"]) == Some("/etc/prometheus/read-token"))
        .and_then(|c| s(&c["source"]));
    let content = mounted.and_then(|source| s(&doc["configs"][source]["content"])).map(interpolate);
    for n in with_role("serve") {
        let token = containers[&n].env_value("COFFEE_RT_READ_TOKEN");
        if token.is_none() || content.as_deref() != token {
            p(format!("{n}: reads the read token {token:?}, Prometheus is given {content:?} (configs → /etc/prometheus/read-token)"));
        }
    }
    // The monitoring bundle: the files it mounts exist.
    for n in ["prometheus", "grafana"] {
        for v in svc(n)["volumes"].as_sequence().into_iter().flatten().filter_map(|v| v.as_str()) {
            if let Some(src) = v.split(':').next().filter(|s| s.starts_with("./") || s.starts_with("../"))
                && !root().join("deploy").join(src).exists()
            {
                p(format!("{n} mounts {src}, which does not exist (deploy/{src})"));
            }
        }
    }
    // Every coffee-rt service is built from the repository's Dockerfile.
    for n in containers.keys() {
        let build = &svc(n)["build"];
        let context = root().join("deploy").join(s(&build["context"]).unwrap_or("."));
        let dockerfile = context.join(s(&build["dockerfile"]).unwrap_or("Dockerfile"));
        let is_ours = dockerfile.canonicalize().ok() == root().join("Dockerfile").canonicalize().ok();
        if !is_ours {
            p(format!("{n}: built from {}, not the repository's Dockerfile", dockerfile.display()));
        }
    }
}

// ---- the Dockerfile ------------------------------------------------------------------------------

/// (stage name, base image, instructions as (KEYWORD, arguments)).
type Stage = (String, String, Vec<(String, String)>);

struct Dockerfile {
    stages: Vec<Stage>,
}

impl Dockerfile {
    fn load() -> Dockerfile {
        let text = read(&root().join("Dockerfile"));
        let mut logical = Vec::new();
        let mut current = String::new();
        for line in text.lines() {
            let trimmed = line.trim();
            if trimmed.starts_with('#') || trimmed.is_empty() {
                continue;
            }
            match trimmed.strip_suffix('\\') {
                Some(part) => {
                    current.push_str(part);
                    current.push(' ');
                }
                None => {
                    current.push_str(trimmed);
                    logical.push(std::mem::take(&mut current));
                }
            }
        }
        let mut stages: Vec<Stage> = Vec::new();
        for l in logical {
            let (keyword, args) = l.split_once(char::is_whitespace).unwrap_or((&l, ""));
            let (keyword, args) = (keyword.to_uppercase(), args.trim().to_owned());
            if keyword == "FROM" {
                let words: Vec<&str> = args.split_whitespace().filter(|w| !w.starts_with("--")).collect();
                let name = match words.as_slice() {
                    [_, as_, name] if as_.eq_ignore_ascii_case("as") => name.to_string(),
                    _ => stages.len().to_string(),
                };
                stages.push((name, words.first().copied().unwrap_or_default().to_owned(), Vec::new()));
            } else if let Some(stage) = stages.last_mut() {
                stage.2.push((keyword, args));
            }
        }
        Dockerfile { stages }
    }

    /// An exec-form instruction of the final stage (`["coffee-rt"]`).
    fn exec_form(&self, keyword: &str) -> Option<Vec<String>> {
        let (_, _, instructions) = self.stages.last()?;
        let (_, args) = instructions.iter().rev().find(|(k, _)| k == keyword)?;
        serde_json::from_str(args).ok()
    }
}

/// The tokens of the first `cargo build` command in `text` (up to `&&`, `;` or the line's end).
fn cargo_build(text: &str) -> Option<Vec<String>> {
    let start = text.find("cargo build")?;
    let rest = &text[start..];
    let end = [rest.find("&&"), rest.find(';'), rest.find('\n')].into_iter().flatten().min().unwrap_or(rest.len());
    Some(rest[..end].split_whitespace().map(str::to_owned).collect())
}

fn version_of(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.split('.').map(|p| p.chars().take_while(char::is_ascii_digit).collect::<String>().parse::<u32>().ok());
    Some((parts.next()??, parts.next()??))
}

// ---- the tests -------------------------------------------------------------------------------------

#[test]
fn the_dockerfile_builds_what_scripts_run_builds_and_runs_the_binary() {
    let df = Dockerfile::load();
    let binary = Binary::new();
    let mut problems = Vec::new();
    let mut p = |m: String| problems.push(format!("Dockerfile: {m}"));
    // The build: the same cargo command as scripts/run, on a toolchain no older than rust-version.
    let run: String = read(&root().join("scripts/run")).lines().filter(|l| !l.trim_start().starts_with('#')).collect::<Vec<_>>().join("\n");
    let expected = cargo_build(&run).expect("scripts/run runs cargo build");
    let build_stage = df.stages.iter().find(|(_, _, ins)| ins.iter().any(|(k, a)| k == "RUN" && a.contains("cargo build")));
    let Some((build_name, build_image, build_ins)) = build_stage else { panic!("the Dockerfile runs no cargo build") };
    let built = build_ins.iter().find_map(|(k, a)| if k == "RUN" { cargo_build(a) } else { None }).expect("cargo build");
    let as_set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<_>>();
    if as_set(&built) != as_set(&expected) {
        p(format!("builds `{}`, scripts/run builds `{}`", built.join(" "), expected.join(" ")));
    }
    for flag in ["--release", "--locked"] {
        if !built.iter().any(|t| t == flag) {
            p(format!("cargo build without {flag}"));
        }
    }
    if !built.windows(2).any(|w| w == ["-p", "coffee-rt"] || w == ["--package", "coffee-rt"]) {
        p("cargo build does not build the package coffee-rt".into());
    }
    // What the build script reads from the environment (the revision, as .git is not in the
    // context) is a build argument of the build stage; Compose passes only declared ones.
    let build_rs = read(&root().join("crates/cli/build.rs"));
    let args: BTreeSet<String> =
        build_ins.iter().filter(|(k, _)| k == "ARG").filter_map(|(_, a)| a.split('=').next()).map(|a| a.trim().to_owned()).collect();
    for var in build_rs.split("env::var(\"").skip(1).filter_map(|rest| rest.split('"').next()) {
        if !args.contains(var) {
            p(format!("crates/cli/build.rs reads {var}, which the build stage does not declare as an ARG"));
        }
    }
    let compose = compose();
    for (name, svc) in compose["services"].as_mapping().into_iter().flatten() {
        let name = name.as_str().unwrap_or("?");
        for arg in svc["build"]["args"].as_mapping().into_iter().flatten().filter_map(|(k, _)| k.as_str()) {
            if !args.contains(arg) {
                p(format!("compose service {name} passes the build argument {arg}, which the Dockerfile does not declare"));
            }
        }
    }
    let manifest = read(&root().join("Cargo.toml"));
    let msrv = manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("rust-version"))
        .and_then(|v| version_of(v.trim_start_matches([' ', '=', '"'])));
    let image_version = build_image.strip_prefix("rust:").and_then(version_of);
    match (msrv, image_version) {
        (Some(msrv), Some(v)) if v >= msrv => {}
        other => p(format!("the builder {build_image} is not a Rust toolchain at or above rust-version ({other:?})")),
    }
    // The runtime stage: the one binary, from the build stage, on PATH, as a non-root user.
    let (_, runtime_image, runtime) = df.stages.last().expect("a stage");
    if runtime_image.starts_with("rust:") {
        p(format!("the runtime stage is the toolchain image {runtime_image}"));
    }
    let copies: Vec<&String> =
        runtime.iter().filter(|(k, a)| k == "COPY" && a.contains(&format!("--from={build_name}"))).map(|(_, a)| a).collect();
    let on_path = copies.iter().any(|a| {
        let words: Vec<&str> = a.split_whitespace().filter(|w| !w.starts_with("--")).collect();
        matches!(words.as_slice(), [src, dest] if src.ends_with("/coffee-rt")
            && ["/usr/local/bin/coffee-rt", "/usr/local/bin/", "/usr/bin/coffee-rt", "/usr/bin/"].contains(dest))
    });
    if copies.len() != 1 || !on_path {
        p(format!("the runtime stage copies {copies:?} from {build_name}: expected the coffee-rt binary alone, into /usr/local/bin"));
    }
    match df.exec_form("ENTRYPOINT") {
        Some(e) if e == ["coffee-rt"] => {}
        other => p(format!("ENTRYPOINT is {other:?}, not [\"coffee-rt\"]")),
    }
    match df.exec_form("CMD") {
        Some(cmd) => {
            let argv: Vec<String> = std::iter::once("coffee-rt".to_owned()).chain(cmd.iter().cloned()).collect();
            if let Err(e) = coffee_rt::Cli::command().try_get_matches_from(&argv) {
                p(format!("CMD {cmd:?} does not parse: {}", e.render()));
            }
        }
        None => p("no exec-form CMD (the default role)".into()),
    }
    match runtime.iter().rev().find(|(k, _)| k == "USER") {
        Some((_, user)) if !matches!(user.split(':').next(), Some("root" | "0")) => {}
        other => p(format!("the runtime runs as root ({other:?})")),
    }
    for (_, env) in runtime.iter().filter(|(k, _)| k == "ENV") {
        let name = env.split(['=', ' ']).next().unwrap_or_default();
        if !binary.reads_anywhere(name) {
            p(format!("ENV {name} is no variable of coffee-rt"));
        }
    }
    // The ports the chart's roles listen on by default are EXPOSEd.
    let exposed: BTreeSet<u16> = runtime
        .iter()
        .filter(|(k, _)| k == "EXPOSE")
        .flat_map(|(_, a)| a.split_whitespace().filter_map(|w| w.split('/').next()?.parse().ok()).collect::<Vec<u16>>())
        .collect();
    let values: Value = serde_norway::from_str(&read(&chart().join("values.yaml"))).expect("values.yaml");
    for port in [&values["serve"]["port"], &values["metricsPort"]] {
        match port.as_u64().and_then(|p| u16::try_from(p).ok()) {
            Some(port) if exposed.contains(&port) => {}
            other => p(format!("port {other:?} of the chart's roles is not EXPOSEd ({exposed:?})")),
        }
    }
    // The build context holds what the build copies and not the target directory.
    let ignore = read(&root().join(".dockerignore"));
    let ignore: Vec<&str> = ignore.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    if !ignore.iter().any(|l| ["*", "target", "/target", "**/target", "target/"].contains(l)) {
        p(".dockerignore does not keep target/ out of the build context".into());
    }
    for (_, args) in build_ins.iter().filter(|(k, a)| k == "COPY" && !a.contains("--from")) {
        let words: Vec<&str> = args.split_whitespace().filter(|w| !w.starts_with("--")).collect();
        for src in &words[..words.len().saturating_sub(1)] {
            let src = src.trim_end_matches('/');
            if !root().join(src).exists() {
                p(format!("COPY {src}: no such file in the repository"));
            }
            let excluded_all = ignore.first() == Some(&"*");
            let included = ignore.iter().any(|l| l.strip_prefix('!').map(|l| l.trim_end_matches('/')) == Some(src));
            if excluded_all && !included {
                p(format!("COPY {src}, but .dockerignore leaves it out of the context"));
            }
        }
    }
    assert_none("the Dockerfile", &problems);
}

#[test]
fn the_chart_renders_and_wires_its_roles_together() {
    let df = Dockerfile::load();
    let cmd = df.exec_form("CMD").unwrap_or_default();
    let mut problems = Vec::new();
    let chart_meta: Value = serde_norway::from_str(&read(&chart().join("Chart.yaml"))).expect("Chart.yaml");
    if s(&chart_meta["appVersion"]) != Some(env!("CARGO_PKG_VERSION")) {
        problems.push(format!(
            "Chart.yaml: appVersion {:?} is not coffee-rt's version {}",
            chart_meta["appVersion"],
            env!("CARGO_PKG_VERSION")
        ));
    }
    for (what, values) in [("default values", None), ("values-production.yaml", Some("values-production.yaml"))] {
        let docs = render(values);
        let pods = helm_pods(&docs, what, &cmd, &mut problems);
        check_chart(&docs, &pods, what, &mut problems);
        let kinds: BTreeSet<&str> = docs.iter().filter_map(|d| s(&d["kind"])).collect();
        let production = values.is_some();
        for kind in ["Ingress", "ServiceMonitor"] {
            if kinds.contains(kind) != production {
                problems.push(format!("helm ({what}): {kind} is {}", if production { "off" } else { "on by default" }));
            }
        }
        if production {
            let role = |r: &str| pods.iter().find(|p| p.role() == Some(r));
            let hpa = docs.iter().find(|d| s(&d["kind"]) == Some("HorizontalPodAutoscaler"));
            if hpa.and_then(|h| h["spec"]["minReplicas"].as_u64()) < Some(3) {
                problems.push(format!("helm ({what}): serve runs fewer than 3 replicas"));
            }
            if role("processor").and_then(|p| p.doc["spec"]["replicas"].as_u64()) != Some(4) {
                problems.push(format!("helm ({what}): not 4 processors"));
            }
            for r in ["serve", "processor"] {
                if role(r).and_then(|p| p.containers[0].env_value("COFFEE_RT_KAFKA_REPLICATION_FACTOR")) != Some("3") {
                    problems.push(format!("helm ({what}): {r} does not create topics with replication factor 3"));
                }
            }
            for pod in &pods {
                if pod.doc["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"].is_null() {
                    problems.push(format!("{}: no resource requests", pod.owner));
                }
            }
        }
    }
    assert_none("the Helm chart", &problems);
}

#[test]
fn compose_profiles_choose_the_paths_and_the_roles_wait_for_their_services() {
    let df = Dockerfile::load();
    let cmd = df.exec_form("CMD").unwrap_or_default();
    let doc = compose();
    let mut problems = Vec::new();
    let containers = compose_containers(&doc, &cmd, &mut problems);
    check_compose(&doc, &containers, &mut problems);
    assert_none("deploy/compose.yaml", &problems);
}

fn compose_containers(doc: &Value, cmd: &[String], problems: &mut Vec<String>) -> BTreeMap<String, Container> {
    let mut containers = BTreeMap::new();
    for (name, svc) in doc["services"].as_mapping().expect("compose has services") {
        let name = name.as_str().expect("service names are strings");
        if THIRD_PARTY.contains(&name) {
            continue;
        }
        if !s(&svc["image"]).is_some_and(|i| i.contains("coffee-rt")) {
            problems.push(format!("compose: service {name} runs {:?}, neither coffee-rt nor a known third party", svc["image"]));
            continue;
        }
        containers.insert(name.to_owned(), compose_container(name, svc, cmd, problems));
    }
    containers
}

/// The heart of it: every container of the chart (both value files) and of the Compose file
/// against the binary, and each probe path against a running process of its role.
#[tokio::test(flavor = "multi_thread")]
async fn every_container_runs_a_real_role_with_real_variables_ports_and_probes() {
    let binary = Binary::new();
    let cmd = Dockerfile::load().exec_form("CMD").unwrap_or_default();
    let mut problems = Vec::new();
    let mut containers = Vec::new();
    for (what, values) in [("default values", None), ("values-production.yaml", Some("values-production.yaml"))] {
        let docs = render(values);
        containers.extend(helm_pods(&docs, what, &cmd, &mut problems).into_iter().flat_map(|p| p.containers));
    }
    containers.extend(compose_containers(&compose(), &cmd, &mut problems).into_values());
    assert!(containers.len() >= 15, "found only {} containers", containers.len());
    let mut probed: BTreeMap<Vec<String>, BTreeSet<String>> = BTreeMap::new();
    for c in &containers {
        if let Some((argv, paths)) = check_container(&binary, c, &mut problems) {
            probed.entry(argv).or_default().extend(paths);
        }
    }
    let roles: BTreeSet<&str> = probed.keys().filter_map(|a| a.first().map(String::as_str)).collect();
    for role in ["serve", "worker", "processor", "aggregate"] {
        if !roles.contains(role) {
            problems.push(format!("no container probes `coffee-rt {role}`"));
        }
    }
    assert_none("the containers against the binary", &problems);

    // Each role that something probes, started as the manifests start it, on a port of the test's.
    let env = TestEnv::new();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
    let mut running = Vec::new();
    for (argv, paths) in &probed {
        let var = binary.roles[&argv[0]].listen_var.expect("a probed role listens");
        let addr = format!("127.0.0.1:{}", free_port());
        let args: Vec<&str> = argv.iter().map(String::as_str).collect();
        let child = env.spawn(&args, &[(var, addr.as_str())]);
        running.push((argv.join(" "), addr, paths, child));
    }
    let checks = running.iter_mut().map(|(role, addr, paths, child)| {
        let client = client.clone();
        async move {
            let mut failures = Vec::new();
            for path in paths.iter() {
                let url = format!("http://{addr}{path}");
                let deadline = tokio::time::Instant::now() + PROBE_TIMEOUT;
                let failure = loop {
                    let last = match client.get(&url).send().await {
                        Ok(r) if r.status() == reqwest::StatusCode::OK => break None,
                        Ok(r) => format!("{} {}", r.status(), r.text().await.unwrap_or_default()),
                        Err(e) => e.to_string(),
                    };
                    if let Ok(Some(status)) = child.try_wait() {
                        break Some(format!("the process exited ({status}); last: {last}"));
                    }
                    if tokio::time::Instant::now() >= deadline {
                        break Some(format!("no 200 within {PROBE_TIMEOUT:?}; last: {last}"));
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                };
                if let Some(why) = failure {
                    failures.push(format!("`coffee-rt {role}`: GET {path}: {why}"));
                }
            }
            failures
        }
    });
    let failures: Vec<String> = futures::future::join_all(checks).await.into_iter().flatten().collect();
    for (_, _, _, child) in &mut running {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    assert_none("the probe paths on running roles", &failures);
    eprintln!(
        "deploy_manifests: {} containers checked against the binary; {} roles started, {} probe paths answered 200",
        containers.len(),
        probed.len(),
        probed.values().map(BTreeSet::len).sum::<usize>()
    );
}
