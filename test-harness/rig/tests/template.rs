//! The rig's Envoy builder up to the point where Envoy would start: missing binary, missing
//! template variables and missing .wasm files are clear errors, not Envoy crashes.

use meshsight_rig::{wasm_path, Envoy, RigError};

#[test]
fn missing_envoy_binary_says_make_envoy() {
    let err = Envoy::builder("envoy-config/e2e/rig.yaml")
        .binary("/nonexistent/envoy")
        .start()
        .expect_err("no binary");
    assert!(matches!(err, RigError::EnvoyMissing { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("make envoy"), "{message}");
    assert!(message.contains("/nonexistent/envoy"), "{message}");
}

#[test]
fn unset_template_variable_is_named() {
    // rig.yaml uses ${RIG_TAG}, which only the test gives.
    let err = Envoy::builder("envoy-config/e2e/rig.yaml")
        .binary("/bin/true")
        .start()
        .expect_err("RIG_TAG unset");
    match &err {
        RigError::UnknownVariables { names, template } => {
            assert_eq!(names, &vec!["RIG_TAG".to_string()]);
            assert!(template.ends_with("envoy-config/e2e/rig.yaml"));
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(err.to_string().contains("${RIG_TAG}"), "{err}");
}

#[test]
fn missing_template_is_an_io_error_naming_it() {
    let err = Envoy::builder("envoy-config/e2e/no-such-template.yaml")
        .binary("/bin/true")
        .start()
        .expect_err("no template");
    assert!(matches!(err, RigError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-template.yaml"), "{err}");
}

#[test]
fn missing_wasm_file_says_make_wasm() {
    let err = Envoy::builder("envoy-config/e2e/rig_wasm.yaml")
        .binary("/bin/true")
        .var("WASM_DIR", "/nonexistent/wasm")
        .var("WASM_CONFIG", "{}")
        .start()
        .expect_err("no wasm");
    assert!(matches!(err, RigError::WasmMissing { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("make wasm"), "{message}");
    assert!(
        message.contains("/nonexistent/wasm/meshsight.wasm"),
        "{message}"
    );
}

#[test]
fn wasm_path_names_the_release_artifact() {
    let path = wasm_path("meshsight");
    assert!(path.ends_with("meshsight.wasm"), "{}", path.display());
    let path = wasm_path("noop");
    assert!(path.ends_with("meshsight_noop.wasm"), "{}", path.display());
}

/// A shipped access-log block goes into the config re-indented to its placeholder's line, with
/// its own placeholders filled (an extra may use the rig's `${RUN_DIR}`); `validate` renders
/// exactly what `start` would (a refusing "Envoy" keeps the rendered config to read).
#[test]
fn included_blocks_are_rendered_and_indented_to_their_placeholder() {
    let wasm_dir =
        std::env::temp_dir().join(format!("meshsight-rig-include-{}", std::process::id()));
    std::fs::create_dir_all(&wasm_dir).unwrap();
    std::fs::write(wasm_dir.join("meshsight_verdict_probe.wasm"), b"").unwrap();
    let err = Envoy::builder("envoy-config/e2e/access_log_sinks.yaml")
        .binary("/bin/false")
        .var("WASM_DIR", wasm_dir.display().to_string())
        .var("OTLP_HTTP_PORT", "1")
        .var("OTLP_GRPC_PORT", "2")
        .var("OTLP_HTTP_URI", "http://127.0.0.1:1/v1/logs")
        .var("ACCESS_LOG_OTEL_GRPC", "")
        .var("ACCESS_LOG_OTEL_HTTP", "")
        .include(
            "ACCESS_LOG_FILE",
            "envoy-config/access-log/file.yaml",
            &[("ACCESS_LOG_PATH", "${RUN_DIR}/access.ndjson")],
        )
        .validate();
    let _ = std::fs::remove_dir_all(&wasm_dir);
    let config = match err {
        Err(RigError::Invalid { config, .. }) => std::fs::read_to_string(config).unwrap(),
        other => panic!("/bin/false must refuse: {other:?}"),
    };
    let block = std::fs::read_to_string(
        meshsight_rig::workspace_root().join("envoy-config/access-log/file.yaml"),
    )
    .unwrap();
    let run_dir = config
        .lines()
        .find_map(|l| l.trim().strip_prefix("path: "))
        .and_then(|p| p.strip_suffix("/access.ndjson"))
        .unwrap_or_else(|| panic!("no access log path in:\n{config}"))
        .to_string();
    assert!(run_dir.contains("meshsight-rig-"), "{run_dir}");
    for line in block.lines() {
        let line = line.replace("${ACCESS_LOG_PATH}", &format!("{run_dir}/access.ndjson"));
        let indented = format!("          {line}");
        assert!(
            config.lines().any(|l| l == indented.trim_end()),
            "{line:?} not at the placeholder's indentation in:\n{config}"
        );
    }
}
