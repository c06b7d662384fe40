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
