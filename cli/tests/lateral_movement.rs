//! The lateral movement `learn` must not open (issue 20, item 4), measured on generated mesh
//! traffic: five services, 46 endpoints, callers with SPIFFE identities and 1% scanner probes.
//! Four workloads of one namespace call different services (`shop/web` and `shop/search` the
//! catalog, `shop/orders` and `shop/checkout` payments). Learned per namespace, the policy let
//! `shop/web` charge payments and `shop/search` read payment tokens, which neither ever did: the
//! path from a compromised internet-facing workload to the money. Learned per principal (the
//! default) it denies both and still allows every held-out legitimate request.
//!
//! Then the binary on the same traffic: `learn`'s report of what it widened and why,
//! `--sources namespace`, records without principals, and `check --records` naming the sources
//! no recorded request came from (exit 1 under `--deny-warnings`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

use meshsight_cli::evaluate::evaluate;
use meshsight_cli::learn::{LearnOptions, Learner, SourceMode};
use meshsight_cli::quality::held_out;
use meshsight_cli::records::{parse_line, ObservedRequest};
use meshsight_cli::replay::judge;
use meshsight_cli::request::ExplainRequest;
use meshsight_cli::traffic::{recording_policy, SplitMix};
use meshsight_policy::allowlist::{AllowList, RawPolicy};
use meshsight_policy::decision::AllowlistOutcome;
use meshsight_policy::plugin::PluginPolicy;

const RECORDS: u64 = 20_000;
/// 15% of 20,000: about 3,000 held-out requests, as measured in the issue.
const HOLDOUT: f64 = 0.15;

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    /// A workload with an mTLS identity: `namespace/service account`.
    Workload(&'static str),
    /// The kubelet's health checks (no identity).
    Kubelet,
    /// The internet (scanners; no identity).
    Internet,
}

const INGRESS: Caller = Caller::Workload("istio-system/istio-ingressgateway");
const WEB: Caller = Caller::Workload("shop/web");
const SEARCH: Caller = Caller::Workload("shop/search");
const ORDERS: Caller = Caller::Workload("shop/orders");
const CHECKOUT: Caller = Caller::Workload("shop/checkout");
const PROMETHEUS: Caller = Caller::Workload("monitoring/prometheus");
const KUBELET: Caller = Caller::Kubelet;

fn spiffe(workload: &str) -> String {
    let (ns, sa) = workload.split_once('/').unwrap();
    format!("spiffe://cluster.local/ns/{ns}/sa/{sa}")
}

const WEB_HOST: &str = "web.shop.svc.cluster.local";
const CATALOG: &str = "catalog.shop.svc.cluster.local";
const ORDERS_HOST: &str = "orders.shop.svc.cluster.local";
const PAYMENTS: &str = "payments.payments.svc.cluster.local";
const USERS: &str = "users.identity.svc.cluster.local";

/// (host, method, template, who calls it and how often). Parameters: `{n}` number, `{t}`
/// token, `{a}` static asset name, `{s}` category slug.
type Endpoint = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(Caller, u32)],
);

const MESH: &[Endpoint] = &[
    (WEB_HOST, "GET", "/", &[(INGRESS, 30)]),
    (WEB_HOST, "GET", "/static/{a}", &[(INGRESS, 60)]),
    (WEB_HOST, "GET", "/products/{n}", &[(INGRESS, 30)]),
    (WEB_HOST, "GET", "/search", &[(INGRESS, 15)]),
    (WEB_HOST, "GET", "/cart", &[(INGRESS, 10)]),
    (WEB_HOST, "POST", "/cart/items", &[(INGRESS, 8)]),
    (WEB_HOST, "GET", "/account", &[(INGRESS, 6)]),
    (WEB_HOST, "POST", "/login", &[(INGRESS, 6)]),
    (WEB_HOST, "POST", "/logout", &[(INGRESS, 3)]),
    (WEB_HOST, "GET", "/healthz", &[(KUBELET, 5)]),
    (CATALOG, "GET", "/api/products", &[(WEB, 15)]),
    (
        CATALOG,
        "GET",
        "/api/products/{n}",
        &[(WEB, 30), (SEARCH, 10)],
    ),
    (CATALOG, "GET", "/api/products/{n}/reviews", &[(WEB, 8)]),
    (CATALOG, "GET", "/api/categories", &[(WEB, 4)]),
    (CATALOG, "GET", "/api/categories/{s}", &[(WEB, 8)]),
    (CATALOG, "GET", "/api/index", &[(SEARCH, 10)]),
    (CATALOG, "GET", "/api/index/{n}", &[(SEARCH, 6)]),
    (CATALOG, "GET", "/healthz", &[(KUBELET, 5)]),
    (CATALOG, "GET", "/metrics", &[(PROMETHEUS, 3)]),
    (ORDERS_HOST, "GET", "/orders", &[(WEB, 5)]),
    (ORDERS_HOST, "GET", "/orders/{n}", &[(WEB, 10)]),
    (ORDERS_HOST, "POST", "/orders", &[(CHECKOUT, 8)]),
    (ORDERS_HOST, "GET", "/orders/{n}/status", &[(WEB, 8)]),
    (ORDERS_HOST, "GET", "/orders/{n}/invoice", &[(WEB, 2)]),
    (ORDERS_HOST, "POST", "/orders/{n}/cancel", &[(WEB, 2)]),
    (ORDERS_HOST, "PATCH", "/orders/{n}", &[(CHECKOUT, 3)]),
    (ORDERS_HOST, "GET", "/healthz", &[(KUBELET, 5)]),
    (ORDERS_HOST, "GET", "/metrics", &[(PROMETHEUS, 3)]),
    (PAYMENTS, "POST", "/charges", &[(ORDERS, 5), (CHECKOUT, 6)]),
    (PAYMENTS, "GET", "/charges/{t}", &[(ORDERS, 4)]),
    (PAYMENTS, "POST", "/charges/{t}/capture", &[(ORDERS, 4)]),
    (PAYMENTS, "POST", "/refunds", &[(ORDERS, 2)]),
    (PAYMENTS, "GET", "/refunds/{t}", &[(ORDERS, 1)]),
    (
        PAYMENTS,
        "GET",
        "/tokens/{t}",
        &[(CHECKOUT, 6), (ORDERS, 3)],
    ),
    (PAYMENTS, "POST", "/tokens", &[(CHECKOUT, 4)]),
    (PAYMENTS, "GET", "/healthz", &[(KUBELET, 5)]),
    (PAYMENTS, "GET", "/metrics", &[(PROMETHEUS, 3)]),
    (USERS, "GET", "/users/{n}", &[(WEB, 10)]),
    (USERS, "PUT", "/users/{n}", &[(WEB, 2)]),
    (USERS, "GET", "/users/{n}/preferences", &[(WEB, 3)]),
    (USERS, "GET", "/users/{n}/addresses", &[(CHECKOUT, 6)]),
    (USERS, "POST", "/sessions", &[(WEB, 5)]),
    (USERS, "DELETE", "/sessions/{t}", &[(WEB, 2)]),
    (USERS, "GET", "/.well-known/jwks.json", &[(INGRESS, 3)]),
    (USERS, "GET", "/healthz", &[(KUBELET, 5)]),
    (USERS, "GET", "/metrics", &[(PROMETHEUS, 3)]),
];

const PROBES: &[&str] = &[
    "/.env",
    "/.git/config",
    "/wp-login.php",
    "/admin",
    "/actuator/env",
    "/server-status",
    "/backup.zip",
    "/.aws/credentials",
    "/debug/pprof/",
    "/graphql",
];

const WORDS: &[&str] = &["app", "vendor", "main", "runtime", "logo", "hero", "icon"];
const SLUGS: &[&str] = &["books", "games", "garden", "kitchen", "music", "toys"];

/// The generator: a weighted walk over (endpoint, caller) with 1% scanner probes.
struct Mesh {
    rng: SplitMix,
    calls: Vec<(&'static str, &'static str, &'static str, Caller, u32)>,
    total: u32,
    policy: PluginPolicy,
    /// Callers present their SPIFFE ID (mTLS); without it no record carries a principal.
    mtls: bool,
    clock_ns: u64,
}

impl Mesh {
    fn new(seed: u64, mtls: bool) -> Mesh {
        let calls: Vec<_> = MESH
            .iter()
            .flat_map(|(host, method, template, callers)| {
                callers
                    .iter()
                    .map(move |(caller, weight)| (*host, *method, *template, *caller, *weight))
            })
            .collect();
        Mesh {
            rng: SplitMix::new(seed),
            total: calls.iter().map(|c| c.4).sum(),
            calls,
            policy: recording_policy("ocsf").unwrap(),
            mtls,
            clock_ns: 1_767_225_600_000_000_000,
        }
    }

    fn hex(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(b"0123456789abcdef"[self.rng.below(16)]))
            .collect()
    }

    fn token(&mut self) -> String {
        const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let body: String = (0..20)
            .map(|_| char::from(B64[self.rng.below(B64.len())]))
            .collect();
        format!("tok_{body}9Zq")
    }

    fn fill(&mut self, template: &str) -> String {
        let mut path = String::new();
        for seg in template.split('/').skip(1) {
            path.push('/');
            match seg {
                "{n}" => path.push_str(&(1 + self.rng.below(100_000)).to_string()),
                "{t}" => path.push_str(&self.token()),
                "{s}" => path.push_str(SLUGS[self.rng.below(SLUGS.len())]),
                "{a}" => {
                    let word = WORDS[self.rng.below(WORDS.len())];
                    let n = self.rng.below(40);
                    path.push_str(&format!("{word}-{n}.js"));
                }
                _ => path.push_str(seg),
            }
        }
        path
    }

    fn identify(&mut self, request: &mut ExplainRequest, caller: Caller) {
        let pod = IpAddr::V4(Ipv4Addr::new(10, 8, 1, 2 + self.rng.below(200) as u8));
        match caller {
            Caller::Workload(w) => {
                request.source_ip = Some(pod);
                if self.mtls {
                    request.principal = Some(spiffe(w));
                }
            }
            Caller::Kubelet => request.source_ip = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
            Caller::Internet => {
                request.source_ip = Some(IpAddr::V4(Ipv4Addr::new(
                    198,
                    51,
                    100,
                    1 + self.rng.below(250) as u8,
                )));
            }
        }
    }

    /// The next record's line, and whether it is legitimate (else a probe).
    fn next(&mut self) -> (String, bool) {
        self.clock_ns += 1_000_000;
        let probe = self.rng.chance(0.01);
        let mut request = ExplainRequest {
            scheme: "http".into(),
            ..ExplainRequest::default()
        };
        let status = if probe {
            request.method = "GET".into();
            request.authority = MESH[self.rng.below(MESH.len())].0.into();
            request.path = PROBES[self.rng.below(PROBES.len())].into();
            let caller = if self.rng.chance(0.7) {
                Caller::Internet
            } else {
                INGRESS
            };
            self.identify(&mut request, caller);
            404
        } else {
            let mut at = self.rng.below(self.total as usize) as u32;
            let mut pick = self.calls[0];
            for c in &self.calls {
                if at < c.4 {
                    pick = *c;
                    break;
                }
                at -= c.4;
            }
            let (host, method, template, caller, _) = pick;
            request.method = method.into();
            request.authority = host.into();
            request.path = self.fill(template);
            self.identify(&mut request, caller);
            if method == "POST" {
                201
            } else {
                200
            }
        };
        let id = format!(
            "{}-{}-4{}-a{}-{}",
            self.hex(8),
            self.hex(4),
            self.hex(3),
            self.hex(3),
            self.hex(12)
        );
        request.headers.push(("x-request-id".into(), id));
        request
            .headers
            .push(("user-agent".into(), "okhttp/4.12.0".into()));
        let line = evaluate(&self.policy, &request, status, self.clock_ns)
            .audit
            .record
            .to_string();
        (line, !probe)
    }
}

/// Requests no workload made in the records: each caller reaching for what its namespace
/// neighbours call.
fn lateral() -> Vec<(Caller, &'static str, &'static str, String)> {
    vec![
        (WEB, "POST", PAYMENTS, "/charges".into()),
        (
            SEARCH,
            "GET",
            PAYMENTS,
            "/tokens/tok_Qx7bK2mN8pL4vR9sT3wZq".into(),
        ),
        (
            WEB,
            "GET",
            PAYMENTS,
            "/tokens/tok_Qx7bK2mN8pL4vR9sT3wZq".into(),
        ),
        (SEARCH, "POST", PAYMENTS, "/charges".into()),
        (WEB, "POST", PAYMENTS, "/refunds".into()),
        (WEB, "GET", USERS, "/users/17/addresses".into()),
        (SEARCH, "GET", ORDERS_HOST, "/orders/5".into()),
        (ORDERS, "GET", CATALOG, "/api/index".into()),
        (CHECKOUT, "POST", PAYMENTS, "/refunds".into()),
    ]
}

fn request(caller: Caller, method: &str, host: &str, path: &str) -> ObservedRequest {
    ObservedRequest {
        method: method.into(),
        path: path.into(),
        authority: host.into(),
        scheme: "http".into(),
        principal: match caller {
            Caller::Workload(w) => Some(spiffe(w)),
            _ => None,
        },
        status: Some(200),
        ..ObservedRequest::default()
    }
}

fn allowed(list: &AllowList, r: &ObservedRequest) -> bool {
    judge(list, r).0 == AllowlistOutcome::Allowed
}

/// Learns from the training share of `records` (all of them legitimate or probes).
fn learn(records: &[(ObservedRequest, bool)], sources: SourceMode) -> (RawPolicy, AllowList) {
    let mut learner = Learner::new(LearnOptions {
        sources,
        ..LearnOptions::default()
    });
    for (r, _) in records.iter().filter(|(r, _)| !held_out(r, HOLDOUT)) {
        learner.observe(r);
    }
    let raw = learner.propose();
    let list = AllowList::try_from(raw.clone()).expect("the proposal compiles");
    (raw, list)
}

#[test]
fn principals_deny_lateral_movement_within_a_namespace_and_allow_all_held_out_traffic() {
    let mut mesh = Mesh::new(2026, true);
    assert_eq!(MESH.len(), 46);
    let records: Vec<(ObservedRequest, bool)> = (1..=RECORDS)
        .map(|line| {
            let (text, legit) = mesh.next();
            (parse_line(text.as_bytes(), line).unwrap(), legit)
        })
        .collect();

    let (_, list) = learn(&records, SourceMode::Principals);
    let (mut train, mut train_allowed) = (0u64, 0u64);
    let (mut legit, mut legit_allowed, mut probes, mut probes_denied) = (0u64, 0u64, 0u64, 0u64);
    for (r, is_legit) in &records {
        let ok = allowed(&list, r);
        match (held_out(r, HOLDOUT), is_legit) {
            (false, true) => {
                train += 1;
                train_allowed += u64::from(ok);
            }
            (true, true) => {
                legit += 1;
                legit_allowed += u64::from(ok);
            }
            (true, false) => {
                probes += 1;
                probes_denied += u64::from(!ok);
            }
            (false, false) => {}
        }
    }
    println!(
        "principals: {} rules; training legitimate allowed {train_allowed} of {train}; held-out legitimate allowed {legit_allowed} of {legit}; probes denied {probes_denied} of {probes}",
        list.rule_count()
    );
    assert_eq!(train_allowed, train, "the learning records replay clean");
    assert!(legit > 2_500, "{legit} held-out legitimate requests");
    assert_eq!(legit_allowed, legit, "every held-out legitimate request");
    assert_eq!(probes_denied, probes, "every held-out probe");

    for (caller, method, host, path) in lateral() {
        assert!(
            !allowed(&list, &request(caller, method, host, &path)),
            "{caller:?} {method} {host}{path} was never made, yet the proposal allows it"
        );
    }
    // What they do call is allowed.
    assert!(allowed(
        &list,
        &request(ORDERS, "POST", PAYMENTS, "/charges")
    ));
    assert!(allowed(
        &list,
        &request(CHECKOUT, "POST", PAYMENTS, "/charges")
    ));
    assert!(allowed(
        &list,
        &request(
            CHECKOUT,
            "GET",
            PAYMENTS,
            "/tokens/tok_Qx7bK2mN8pL4vR9sT3wZq"
        )
    ));
    assert!(allowed(
        &list,
        &request(SEARCH, "GET", CATALOG, "/api/products/42")
    ));

    // Per namespace (the measured gap): both lateral calls of the issue get in.
    let (_, by_namespace) = learn(&records, SourceMode::Namespaces);
    assert!(allowed(
        &by_namespace,
        &request(WEB, "POST", PAYMENTS, "/charges")
    ));
    assert!(allowed(
        &by_namespace,
        &request(SEARCH, "GET", PAYMENTS, "/tokens/tok_Qx7bK2mN8pL4vR9sT3wZq")
    ));
}

// ---- the binary --------------------------------------------------------------------------

/// Records written once per test run: (with mTLS, without).
fn records_file(mtls: bool) -> &'static PathBuf {
    static WITH: OnceLock<PathBuf> = OnceLock::new();
    static WITHOUT: OnceLock<PathBuf> = OnceLock::new();
    let cell = if mtls { &WITH } else { &WITHOUT };
    cell.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("meshsight-lateral-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(if mtls { "mtls.ndjson" } else { "plain.ndjson" });
        let mut mesh = Mesh::new(7, mtls);
        let mut text = String::new();
        for _ in 0..8_000 {
            text.push_str(&mesh.next().0);
            text.push('\n');
        }
        std::fs::write(&path, text).unwrap();
        path
    })
}

fn meshsight(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshsight"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `meshsight learn RECORDS ARGS`, its proposal written to a file: (output, proposal, path).
fn learned(mtls: bool, args: &[&str], name: &str) -> (Output, serde_json::Value, PathBuf) {
    let records = records_file(mtls);
    let mut all = vec!["learn", records.to_str().unwrap()];
    all.extend_from_slice(args);
    let o = meshsight(&all);
    assert!(o.status.success(), "{}", stderr(&o));
    let path = records.with_file_name(name);
    std::fs::write(&path, &o.stdout).unwrap();
    let v = serde_json::from_slice(&o.stdout).unwrap();
    (o, v, path)
}

/// The rule of the proposal for `host` and `method` whose paths include `path`.
fn rule<'v>(
    v: &'v serde_json::Value,
    host: &str,
    method: &str,
    path: &str,
) -> &'v serde_json::Value {
    v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["hosts"][0] == host
                && r["methods"][0] == method
                && r["paths"].as_array().unwrap().iter().any(|p| p == path)
        })
        .unwrap_or_else(|| panic!("no rule for {method} {host}{path} in {v}"))
}

#[test]
fn learn_names_principals_and_reports_what_it_widened_and_why() {
    let (o, v, _) = learned(true, &[], "principals.json");
    let charges = rule(&v, PAYMENTS, "POST", "/charges");
    assert_eq!(
        charges["sources"],
        serde_json::json!({"principals": [spiffe("shop/checkout"), spiffe("shop/orders")]})
    );
    let err = stderr(&o);
    assert!(
        err.contains("sources: the principals (SPIFFE IDs) that called each path"),
        "{err}"
    );
    assert!(err.contains("widened: "), "{err}");
    // Fan-out: the static assets became one `*` template.
    let line = err
        .lines()
        .find(|l| l.contains("/static/*: generalized to \"*\": "))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains("distinct last segments after"), "{line}");
    assert!(line.ends_with("requests (--fanout 20)"), "{line}");
    // Values became parameters, with one they stand for.
    assert!(
        err.lines()
            .any(|l| l.contains(") /orders/{id}/status: parameterized {id} (values like \"")),
        "{err}"
    );
    // Health checks carry no identity: any caller, and why.
    assert!(
        err.contains("admits any caller (no sources): ")
            && err.contains("request(s) came without an mTLS identity (e.g. from 10.0.0.1)"),
        "{err}"
    );
    assert!(!err.contains("admits every workload"), "{err}");
}

#[test]
fn sources_namespace_admits_every_workload_of_the_namespace_and_check_names_who_never_called() {
    let (o, v, policy) = learned(true, &["--sources", "namespace"], "namespaces.json");
    assert_eq!(
        rule(&v, PAYMENTS, "POST", "/charges")["sources"],
        serde_json::json!({"namespaces": ["shop"]})
    );
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "admits every workload of namespace shop (--sources namespaces); only {}, {} called",
            spiffe("shop/checkout"),
            spiffe("shop/orders")
        )),
        "{err}"
    );

    let records = records_file(true).to_str().unwrap();
    let c = meshsight(&["check", policy.to_str().unwrap(), "--records", records]);
    assert_eq!(
        c.status.code(),
        Some(0),
        "warnings alone pass: {}",
        stderr(&c)
    );
    let out = stdout(&c);
    assert!(
        out.lines().any(|l| l.starts_with("warning: rules[")
            && l.contains("(payments-post")
            && l.contains(&format!(
                "admits every workload of namespace \"shop\": only {}, {} hit it, yet the records show {}, {} there never calling it",
                spiffe("shop/checkout"),
                spiffe("shop/orders"),
                spiffe("shop/search"),
                spiffe("shop/web")
            ))),
        "{out}"
    );
    let c = meshsight(&[
        "check",
        policy.to_str().unwrap(),
        "--records",
        records,
        "--deny-warnings",
    ]);
    assert_eq!(c.status.code(), Some(1), "{}", stdout(&c));
    let c = meshsight(&[
        "check",
        policy.to_str().unwrap(),
        "--records",
        records,
        "--json",
    ]);
    let j: serde_json::Value = serde_json::from_slice(&c.stdout).unwrap();
    assert!(
        j["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "unseen_source"),
        "{j}"
    );
}

#[test]
fn check_finds_no_unseen_source_in_the_principal_proposal() {
    let (_, _, policy) = learned(true, &[], "principals-check.json");
    let records = records_file(true).to_str().unwrap();
    let c = meshsight(&[
        "check",
        policy.to_str().unwrap(),
        "--records",
        records,
        "--deny-warnings",
    ]);
    assert_eq!(c.status.code(), Some(0), "{}{}", stdout(&c), stderr(&c));
    assert!(stdout(&c).contains("; 0 warning(s))"), "{}", stdout(&c));
}

#[test]
fn records_without_principals_learn_rules_open_to_any_caller_and_say_so() {
    for args in [&[][..], &["--sources", "namespace"][..]] {
        let (o, v, policy) = learned(false, args, "plain.json");
        let rules = v["rules"].as_array().unwrap();
        assert!(!rules.is_empty());
        assert!(
            rules.iter().all(|r| r.get("sources").is_none()),
            "{args:?}: {v}"
        );
        let err = stderr(&o);
        assert!(
            err.contains("learned records carries an mTLS principal (SPIFFE ID), so no rule names sources and every rule admits any caller"),
            "{args:?}: {err}"
        );
        // No identity anywhere: check has no source to name either.
        let records = records_file(false).to_str().unwrap();
        let c = meshsight(&["check", policy.to_str().unwrap(), "--records", records]);
        assert!(!stdout(&c).contains("source"), "{}", stdout(&c));
    }
}
