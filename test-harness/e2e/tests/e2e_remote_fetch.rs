#![cfg(feature = "e2e")]
//! Envoy's own remote fetch of meshsight.wasm (`envoy-config/e2e/remote_fetch.yaml`):
//! `vm_config.code.remote` with `http_uri` and `sha256`, from the rig's file server, as a plain
//! Envoy (or an Istio WasmPlugin with an http url) loads the module. With the module's sha256 the
//! module loads and enforces its allowlist; with a wrong one Envoy refuses the code (its log
//! says the plugin failed to load) and fails requests closed with its own error, never running
//! the module.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use meshsight_rig::{send, sha256_hex, Envoy, FileServer, HttpRequest, HttpResponse};

const POLICY: &str = r#"{"allowlist":{"mode":"enforce","rules":[{"name":"ok","methods":["GET"],"paths":["/ok/**"]}]}}"#;
const WASM_PATH: &str = "/meshsight.wasm";
/// The remote fetch and the VM start run after admin `/ready`: how long a test waits for them.
const LOAD_WAIT: Duration = Duration::from_secs(60);

fn module() -> Vec<u8> {
    let path = meshsight_rig::wasm_path("meshsight");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run `make wasm`)", path.display()))
}

fn start(server: &FileServer, sha256: &str) -> Envoy {
    Envoy::builder("envoy-config/e2e/remote_fetch.yaml")
        .var("WASM_URL", server.url())
        .var("WASM_SERVER_PORT", server.port().to_string())
        .var("WASM_SHA256", sha256)
        .var("MESHSIGHT_CONFIG", POLICY)
        .start()
        .unwrap_or_else(|e| panic!("Envoy must start: {e}"))
}

fn get(envoy: &Envoy, path: &str) -> HttpResponse {
    send(
        envoy.port(),
        &HttpRequest::get(path).timeout(Duration::from_secs(5)),
    )
}

#[test]
fn the_fetched_module_with_its_sha256_loads_and_enforces_the_allowlist() {
    let bytes = module();
    let sha256 = sha256_hex(&bytes).expect("sha256sum");
    let server = FileServer::start(WASM_PATH, "application/wasm", bytes);
    let envoy = start(&server, &sha256);
    // Until the fetched module runs, Envoy answers on its own: wait for the module's 403.
    let deadline = Instant::now() + LOAD_WAIT;
    let denied = loop {
        let r = get(&envoy, "/nope");
        if r.status == 403 || Instant::now() >= deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        denied.status,
        403,
        "the module must deny /nope: {}\nlog tail:\n{}",
        denied.text(),
        envoy.log_tail(60)
    );
    let ok = get(&envoy, "/ok/1");
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.text(), "upstream\n");
    // The module hands its counters to Envoy on its tick: wait for the flush.
    assert_eq!(
        envoy.settled_stat("meshsight_allowlist_denied", 1, Duration::from_secs(5)),
        Some(1),
        "the 403 came from the module's allowlist"
    );
    assert_eq!(
        envoy.settled_stat("meshsight_allowlist_allowed", 1, Duration::from_secs(5)),
        Some(1)
    );
    assert!(server.fetches() >= 1, "Envoy never fetched the module");
    assert!(
        server.requests().iter().all(|r| r.path == WASM_PATH),
        "Envoy fetched the configured URL only: {:?}",
        server.requests()
    );
}

#[test]
fn a_wrong_sha256_is_refused_and_requests_fail_closed() {
    let server = FileServer::start(WASM_PATH, "application/wasm", module());
    let wrong = sha256_hex(b"not the module").expect("sha256sum");
    let envoy = start(&server, &wrong);
    // Envoy checks the hash of each fetched copy, counts a mismatch as a failed fetch (retried),
    // then gives up: "Plugin meshsight failed to load".
    let refused = envoy.wait_for_log("failed to load", LOAD_WAIT);
    let log = envoy.log();
    assert!(
        refused
            && log
                .to_ascii_lowercase()
                .contains("plugin meshsight failed to load"),
        "Envoy's log must say the plugin failed to load; tail:\n{}",
        envoy.log_tail(60)
    );
    assert!(
        server.fetches() >= 1,
        "Envoy never fetched the module: {:?}",
        server.requests()
    );
    let r = get(&envoy, "/nope");
    assert_ne!(
        r.status, 403,
        "the module answered: Envoy ran code whose sha256 does not match"
    );
    assert!(
        r.status >= 500,
        "Envoy must fail closed with its own 5xx, got {}: {}",
        r.status,
        r.text()
    );
    assert_eq!(envoy.stat("meshsight_allowlist_denied"), None);
    let line = log
        .lines()
        .find(|l| l.contains("failed to load"))
        .unwrap_or("");
    eprintln!(
        "wrong sha256 refused: GET /nope -> {}; log: {}",
        r.status,
        line.trim()
    );
}
