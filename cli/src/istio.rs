//! `meshsight istio`: the Istio `WasmPlugin` (`extensions.istio.io/v1alpha1`) that deploys a
//! policy: the plugin name is the module's root id for the policy's role, the policy goes in
//! `pluginConfig` as written, and phase, priority and failure strategy follow the job (see
//! `envoy-config/istio/README.md`): an enforcing allowlist fails closed, observers fail open.

use serde_json::Value;

use crate::policy::{LoadedPolicy, PolicyRole};
use meshsight_policy::decision::Mode;
use meshsight_policy::plugin::{
    ALLOWLIST_ROOT_ID, AUDIT_ROOT_ID, MIRROR_ROOT_ID, ONE_PASS_ROOT_ID,
};

/// Where and how the plugin is deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IstioOptions {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `spec.selector.matchLabels` entries (`app=checkout`).
    pub selector: Vec<(String, String)>,
    /// `spec.url` (the module's OCI image).
    pub url: String,
    /// `SERVER` (inbound) or `CLIENT` (outbound).
    pub traffic: String,
}

/// Renders the WasmPlugin YAML for `policy`.
pub fn render(policy: &LoadedPolicy, o: &IstioOptions) -> String {
    let (root_id, component, phase, priority) = match policy.role {
        PolicyRole::Meshsight => (ONE_PASS_ROOT_ID, "meshsight", "AUTHZ", 300),
        PolicyRole::Allowlist => (ALLOWLIST_ROOT_ID, "allowlist", "AUTHZ", 300),
        PolicyRole::Mirror => (MIRROR_ROOT_ID, "mirror", "AUTHZ", 200),
        PolicyRole::Audit => (AUDIT_ROOT_ID, "audit", "STATS", 100),
    };
    let enforcing = policy
        .plugin
        .allowlist
        .as_ref()
        .is_some_and(|a| a.mode() == Mode::Enforce);
    let fail = if enforcing { "FAIL_CLOSE" } else { "FAIL_OPEN" };
    let mut y = String::new();
    y.push_str(&format!(
        "# meshsight {component} policy from {}, rendered by `meshsight istio`.\n",
        policy.path.display()
    ));
    if enforcing {
        y.push_str("# FAIL_CLOSE: the allowlist enforces; a module that cannot load must not serve every URL.\n");
    }
    y.push_str("apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n");
    y.push_str(&format!("  name: {}\n", scalar(&o.name)));
    y.push_str(&format!("  namespace: {}\n", scalar(&o.namespace)));
    y.push_str("  labels:\n    app.kubernetes.io/part-of: meshsight\n");
    y.push_str(&format!("    app.kubernetes.io/component: {component}\n"));
    y.push_str("spec:\n");
    if !o.selector.is_empty() {
        y.push_str("  selector:\n    matchLabels:\n");
        for (k, v) in &o.selector {
            y.push_str(&format!("      {}: {}\n", scalar(k), scalar(v)));
        }
    }
    y.push_str(&format!("  url: {}\n", scalar(&o.url)));
    y.push_str("  imagePullPolicy: IfNotPresent\n");
    y.push_str(&format!("  pluginName: {root_id}\n"));
    y.push_str("  type: HTTP\n");
    y.push_str(&format!("  phase: {phase}\n  priority: {priority}\n"));
    y.push_str(&format!("  match:\n    - mode: {}\n", o.traffic));
    y.push_str(&format!("  failStrategy: {fail}\n"));
    y.push_str("  pluginConfig:\n");
    emit(&policy.document, 4, &mut y);
    y
}

/// A YAML scalar: plain when it is safe, else a JSON string (valid YAML double-quoted).
fn scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
        && !matches!(
            s,
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "~"
        )
        && !s.as_bytes()[0].is_ascii_digit()
        && !s.starts_with(['-', '.']);
    if plain {
        s.to_string()
    } else {
        Value::String(s.to_string()).to_string()
    }
}

fn emit(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, val) in map {
                out.push_str(&format!("{pad}{}:", scalar(k)));
                inline_or_block(val, indent, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                out.push_str(&format!("{pad}-"));
                match item {
                    Value::Object(m) if !m.is_empty() => {
                        // First key on the dash line, the rest aligned under it.
                        let mut first = true;
                        for (k, val) in m {
                            if first {
                                out.push_str(&format!(" {}:", scalar(k)));
                                first = false;
                            } else {
                                out.push_str(&format!("{pad}  {}:", scalar(k)));
                            }
                            inline_or_block(val, indent + 2, out);
                        }
                    }
                    other => inline_or_block_item(other, indent, out),
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", other)),
    }
}

fn inline_or_block(val: &Value, indent: usize, out: &mut String) {
    match val {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            emit(val, indent + 2, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            emit(val, indent + 2, out);
        }
        other => out.push_str(&format!(" {}\n", leaf(other))),
    }
}

fn inline_or_block_item(val: &Value, indent: usize, out: &mut String) {
    match val {
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            emit(val, indent + 2, out);
        }
        other => out.push_str(&format!(" {}\n", leaf(other))),
    }
}

/// A leaf value: strings always quoted as JSON (so `*`, `{id}`, `**` and `on` stay strings).
fn leaf(v: &Value) -> String {
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::compile;
    use std::path::Path;

    #[test]
    fn renders_the_plugin_for_a_one_pass_policy() {
        let p = compile(
            Path::new("policy.json"),
            br#"{"allowlist": {"rules": [{"name": "a", "methods": ["GET"], "paths": ["/api/{id}", "/static/**"], "sources": {"namespaces": ["web"]}}]}, "audit": {"format": "ocsf"}}"#,
            None,
        )
        .unwrap();
        let o = IstioOptions {
            name: "meshsight".into(),
            namespace: "shop".into(),
            selector: vec![("app".into(), "checkout".into())],
            url: "oci://registry.example.com/meshsight/meshsight:0.1.0".into(),
            traffic: "SERVER".into(),
        };
        let y = render(&p, &o);
        assert!(y.contains("  pluginName: meshsight\n"), "{y}");
        assert!(y.contains("  failStrategy: FAIL_CLOSE\n"), "{y}");
        assert!(y.contains("            - \"/api/{id}\"\n"), "{y}");
        assert!(
            y.contains("        - methods:\n            - \"GET\"\n          name: \"a\"\n"),
            "{y}"
        );
        assert!(y.contains("    audit:\n      format: \"ocsf\"\n"), "{y}");
    }
}
