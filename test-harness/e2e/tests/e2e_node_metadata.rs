#![cfg(feature = "e2e")]
//! This workload's identity from Istio-shaped node metadata, in the real Envoy
//! (`envoy-config/e2e/node_metadata.yaml`: NAMESPACE, WORKLOAD_NAME, LABELS as istio-agent
//! writes them): the OTLP resource carries `k8s.namespace.name` and `k8s.workload.name`, and each
//! record's `dst_endpoint` names the workload (`name`), its canonical service (`svc_name`) and its
//! namespace (`domain`). Envoy 1.36.4 and 1.40.0 answer only `xds.node.metadata.*`, so this fails
//! when the module asks for `node.metadata.*` alone. Run on both (`ENVOY_VERSION=1.36.4`).
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use meshsight_rig as rig;
use meshsight_rig::{send, EchoUpstream, Envoy, HttpRequest};
use serde_json::Value;

/// The OTLP/HTTP receiver that decodes with the official protos (`scripts/otlp_logs_receiver.py`,
/// as `e2e_audit_otlp.rs` uses it), answering 200 to everything.
struct Receiver {
    child: Child,
    out: PathBuf,
    port: u16,
}

impl Receiver {
    fn start() -> Receiver {
        let dir = std::env::temp_dir().join(format!(
            "meshsight-node-metadata-{}-{}",
            std::process::id(),
            rig::free_port().unwrap()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let port_file = dir.join("port");
        let out = dir.join("requests.ndjson");
        let python = rig::tools_python().unwrap_or_else(|e| panic!("{e}"));
        let child = Command::new(python)
            .arg(rig::workspace_root().join("scripts/otlp_logs_receiver.py"))
            .arg("--port-file")
            .arg(&port_file)
            .arg("--out")
            .arg(&out)
            .spawn()
            .expect("the OTLP receiver starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            if let Some(p) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                break p;
            }
            assert!(Instant::now() < deadline, "the OTLP receiver did not start");
            std::thread::sleep(Duration::from_millis(50));
        };
        Receiver { child, out, port }
    }

    /// The posts received, once at least `n` arrived (or what arrived by the timeout).
    fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let got: Vec<Value> = std::fs::read_to_string(&self.out)
                .unwrap_or_default()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            if got.len() >= n || Instant::now() >= deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const POLICY: &str = r#"{"allowlist":{"mode":"enforce","rules":[{"name":"ok","methods":["GET"],"paths":["/ok/**"]}]},"audit":{"sink":{"http":{"cluster":"collector","encoding":"otlp","path":"/v1/logs","batch_max_records":1,"flush_interval_ms":50}}}}"#;

#[test]
fn istio_node_metadata_names_this_workload_in_the_resource_and_the_records() {
    let upstream = EchoUpstream::start();
    let receiver = Receiver::start();
    let envoy = Envoy::builder("envoy-config/e2e/node_metadata.yaml")
        .var("MESHSIGHT_CONFIG", POLICY)
        .var("COLLECTOR_PORT", receiver.port.to_string())
        .upstream(&upstream)
        .start()
        .unwrap_or_else(|e| panic!("Envoy did not start: {e}"));
    let version = std::env::var("ENVOY_VERSION").unwrap_or_else(|_| "default".into());
    assert_eq!(send(envoy.port(), &HttpRequest::get("/ok/1")).status, 200);
    assert_eq!(send(envoy.port(), &HttpRequest::get("/admin")).status, 403);
    let posts = receiver.wait_for(2, Duration::from_secs(10));
    assert_eq!(
        posts.len(),
        2,
        "[Envoy {version}] {posts:#?}\n{}",
        envoy.log_tail(40)
    );
    for post in &posts {
        assert!(post.get("error").is_none(), "[Envoy {version}] {post}");
        let resource = &post["resource"];
        assert_eq!(resource["service.name"], "meshsight", "[{version}] {post}");
        assert_eq!(resource["k8s.namespace.name"], "shop", "[{version}] {post}");
        assert_eq!(
            resource["k8s.workload.name"], "checkout-v1",
            "[{version}] {post}"
        );
        let body = post["records"][0]["body"].as_str().unwrap();
        let record: Value = serde_json::from_str(body).unwrap();
        let dst = &record["dst_endpoint"];
        assert_eq!(dst["name"], "checkout-v1", "[{version}] {record}");
        assert_eq!(dst["svc_name"], "checkout", "[{version}] {record}");
        assert_eq!(dst["domain"], "shop", "[{version}] {record}");
    }
    eprintln!("[Envoy {version}] node metadata reached the resource and both records");
}
