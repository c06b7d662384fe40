#![cfg(feature = "e2e")]
//! The rig against the real Envoy: start from a template, route through to the echo upstream,
//! read stats and the log, fail with Envoy's log on a bad config, and stop by PID on drop,
//! also when the test panics.

use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use meshsight_rig::{
    envoy_binary, send, try_send, validate_config, EchoUpstream, Envoy, HttpRequest, RigError,
};

/// A value with everything YAML or JSON would trip on.
const TAG: &str = r#"it's "quoted" \ {json: [1]} #x"#;

fn start(upstream: &EchoUpstream) -> Envoy {
    Envoy::builder("envoy-config/e2e/rig.yaml")
        .upstream(upstream)
        .var("RIG_TAG", TAG)
        .start()
        .unwrap_or_else(|err| panic!("Envoy must start: {err}"))
}

fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn envoy_routes_to_the_echo_upstream_and_reports_stats() {
    let upstream = EchoUpstream::start();
    let envoy = start(&upstream);
    assert!(envoy.url("/x").ends_with(&format!(":{}/x", envoy.port())));

    let response = send(
        envoy.port(),
        &HttpRequest::get("/hello/%2e%2e/there?q=1").header("host", "example.com"),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("x-rig-tag"), Some(TAG));
    let echo = response.json().expect("echo JSON");
    assert_eq!(echo["headers"][":authority"], serde_json::Value::Null);
    assert_eq!(echo["headers"]["host"], "example.com");

    let recorded = upstream.wait_for(1, Duration::from_secs(5));
    assert_eq!(recorded.len(), 1);
    // Without normalize_path Envoy forwards the target as sent.
    assert_eq!(recorded[0].path, "/hello/%2e%2e/there?q=1");

    let stats = envoy.stats();
    assert_eq!(stats.get("server.live"), Some(&1), "gauge server.live");
    assert!(
        envoy
            .wait_for_stat(
                "http.ingress.downstream_rq_completed",
                1,
                Duration::from_secs(5)
            )
            .is_some(),
        "counter http.ingress.downstream_rq_completed"
    );
    assert_eq!(envoy.stat("no.such.stat"), None);
    assert!(envoy.rss_bytes().is_some_and(|rss| rss > 1024 * 1024));
    assert!(
        envoy.log().contains("starting main dispatch loop"),
        "{}",
        envoy.log()
    );
    assert!(envoy.run_dir().join("envoy.yaml").is_file());
    assert_eq!(envoy.admin_get("/ready").expect("admin").status, 200);
}

#[test]
fn drop_stops_envoy_by_pid() {
    let upstream = EchoUpstream::start();
    let envoy = start(&upstream);
    let (pid, port, run_dir) = (envoy.pid(), envoy.port(), envoy.run_dir());
    assert!(process_exists(pid));
    drop(envoy);
    assert!(!process_exists(pid), "Envoy {pid} still running after drop");
    assert!(try_send(port, &HttpRequest::get("/").timeout(Duration::from_secs(2))).is_err());
    assert!(!run_dir.exists(), "run dir removed after a passing test");
}

#[test]
fn envoy_is_stopped_when_the_test_panics() {
    let upstream = EchoUpstream::start();
    let upstream_port = upstream.port();
    let (tx, rx) = mpsc::channel();
    let test = thread::spawn(move || {
        let upstream = upstream;
        let envoy = start(&upstream);
        tx.send((envoy.pid(), envoy.run_dir())).expect("send pid");
        panic!("simulated test failure");
    });
    assert!(test.join().is_err(), "the thread panicked");
    let (pid, run_dir) = rx.recv().expect("pid");
    assert!(
        !process_exists(pid),
        "Envoy {pid} survived a panicking test"
    );
    assert!(
        run_dir.join("envoy.log").is_file(),
        "run dir kept after a panic"
    );
    let _ = std::fs::remove_dir_all(run_dir);
    assert!(upstream_port > 0);
}

#[test]
fn parallel_envoys_do_not_clash() {
    let upstream = EchoUpstream::start();
    let first = start(&upstream);
    let second = start(&upstream);
    assert_ne!(first.port(), second.port());
    assert_eq!(send(first.port(), &HttpRequest::get("/1")).status, 200);
    assert_eq!(send(second.port(), &HttpRequest::get("/2")).status, 200);
    let paths: Vec<_> = upstream
        .wait_for(2, Duration::from_secs(5))
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert_eq!(paths, vec!["/1", "/2"]);
}

#[test]
fn a_config_envoy_refuses_fails_with_envoys_log() {
    let err = Envoy::builder("envoy-config/e2e/rig_broken.yaml")
        .start()
        .expect_err("Envoy must refuse the config");
    assert!(matches!(err, RigError::EnvoyExited { .. }), "{err}");
    let log = err.log().expect("log tail");
    assert!(log.contains("no_such_field_in_envoy"), "{log}");
    assert!(err.to_string().contains("no_such_field_in_envoy"));
}

#[test]
fn validate_mode_accepts_the_rendered_config_and_refuses_a_bad_one() {
    let upstream = EchoUpstream::start();
    let envoy = start(&upstream);
    let rendered = envoy.run_dir().join("envoy.yaml");
    validate_config(&envoy_binary(), &rendered).expect("rendered config validates");
    let broken_text = envoy
        .render("envoy-config/e2e/rig_broken.yaml", &[])
        .expect("renders");
    assert!(!broken_text.contains("${"), "{broken_text}");
    let broken = envoy.run_dir().join("broken.yaml");
    std::fs::write(&broken, broken_text).expect("write");
    let err = validate_config(&envoy_binary(), &broken).expect_err("refused");
    assert!(err.to_string().contains("no_such_field_in_envoy"), "{err}");
}

/// Each run proves which Envoy it used: the binary the rig starts reports the version `make e2e`
/// asked for (`$ENVOY_VERSION`, exported by the Makefile), so `make e2e-all` cannot run one
/// version twice (e.g. with `$MESHSIGHT_ENVOY` left set in the environment).
#[test]
fn the_envoy_binary_is_the_version_this_run_asked_for() {
    let expected = std::env::var("ENVOY_VERSION")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| meshsight_rig::DEFAULT_ENVOY_VERSION.to_string());
    let binary = envoy_binary();
    let output = std::process::Command::new(&binary)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
    let text = String::from_utf8_lossy(&output.stdout);
    // "envoy  version: <sha>/1.40.0/Clean/RELEASE/BoringSSL"
    let reported = text
        .split("version: ")
        .nth(1)
        .and_then(|rest| rest.split('/').nth(1))
        .unwrap_or_else(|| panic!("no version in {text:?}"));
    assert_eq!(
        reported,
        expected,
        "{} reports Envoy {reported}, this run asked for {expected}",
        binary.display()
    );
    eprintln!("e2e run against Envoy {reported} ({})", binary.display());
}
