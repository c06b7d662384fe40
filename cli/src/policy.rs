//! Reading a policy file exactly as the module reads its configuration: the one-pass document
//! (`{"allowlist", "mirror", "audit"}`) or one job's policy, compiled by
//! [`PluginPolicy::from_json`] with the role the module would have. The role is given, or told
//! from the document's top-level keys.

use std::path::{Path, PathBuf};

use clap::ValueEnum;
use meshsight_policy::allowlist::RawPolicy;
use meshsight_policy::plugin::{PluginPolicy, Role};
use serde_json::Value;

use crate::error::CliError;

/// Which plugin role a policy file is for (the module's root id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyRole {
    /// The one-pass document `{"allowlist", "mirror", "audit"}` (root id `meshsight`).
    Meshsight,
    /// An allowlist policy alone (root id `meshsight_allowlist`).
    Allowlist,
    /// A mirror policy alone (root id `meshsight_mirror`).
    Mirror,
    /// An audit policy alone (root id `meshsight_audit`).
    Audit,
}

impl PolicyRole {
    /// The module's role for this policy.
    pub fn role(self) -> Role {
        match self {
            PolicyRole::Meshsight => Role::OnePass,
            PolicyRole::Allowlist => Role::Allowlist,
            PolicyRole::Mirror => Role::Mirror,
            PolicyRole::Audit => Role::Audit,
        }
    }

    /// Tells the role from a document's top-level keys: the one-pass document has only
    /// `allowlist`/`mirror`/`audit`; an allowlist has `rules`; a mirror `targets`; an audit
    /// `sink` or `format`.
    pub fn detect(doc: &Value) -> Result<PolicyRole, String> {
        let Some(obj) = doc.as_object() else {
            return Err("the document is not a JSON object".to_string());
        };
        let has = |k: &str| obj.contains_key(k);
        if !obj.is_empty()
            && obj
                .keys()
                .all(|k| matches!(k.as_str(), "allowlist" | "mirror" | "audit"))
        {
            return Ok(PolicyRole::Meshsight);
        }
        if has("rules") && !has("targets") {
            return Ok(PolicyRole::Allowlist);
        }
        if has("targets") {
            return Ok(PolicyRole::Mirror);
        }
        if has("sink") || has("format") || has("record_headers") || has("sample_allowed") {
            return Ok(PolicyRole::Audit);
        }
        let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        Err(format!("top-level keys {keys:?}"))
    }
}

/// A compiled policy and what it was read from.
#[derive(Debug)]
pub struct LoadedPolicy {
    /// The policy file.
    pub path: PathBuf,
    /// The role it was compiled for.
    pub role: PolicyRole,
    /// The compiled jobs, exactly as the module holds them.
    pub plugin: PluginPolicy,
    /// The allowlist section as written (for `check`'s rule analysis).
    pub raw_allowlist: Option<RawPolicy>,
    /// The document as written (for `istio`).
    pub document: Value,
}

/// Reads and compiles the policy at `path` (`role`: given, or detected).
pub fn load(path: &Path, role: Option<PolicyRole>) -> Result<LoadedPolicy, CliError> {
    let bytes = std::fs::read(path).map_err(|e| CliError::io(path, e))?;
    compile(path, &bytes, role)
}

/// Compiles policy text `bytes` read from `path`.
pub fn compile(
    path: &Path,
    bytes: &[u8],
    role: Option<PolicyRole>,
) -> Result<LoadedPolicy, CliError> {
    let document: Value = serde_json::from_slice(bytes).map_err(|e| CliError::Policy {
        path: path.to_path_buf(),
        at: format!("(document) line {} column {}", e.line(), e.column()),
        reason: e.to_string(),
    })?;
    let role = match role {
        Some(r) => r,
        None => PolicyRole::detect(&document).map_err(|why| CliError::UnknownRole {
            path: path.to_path_buf(),
            why,
        })?,
    };
    let plugin = PluginPolicy::from_json(role.role(), bytes).map_err(|e| CliError::Policy {
        path: path.to_path_buf(),
        at: if e.path.is_empty() {
            "(document)".to_string()
        } else {
            e.path.clone()
        },
        reason: e.reason.clone(),
    })?;
    let allowlist_value = match role {
        PolicyRole::Allowlist => Some(document.clone()),
        PolicyRole::Meshsight => document.get("allowlist").cloned(),
        _ => None,
    };
    // It compiled, so it reads.
    let raw_allowlist = allowlist_value
        .and_then(|v| meshsight_policy::ConfigError::parse_json(v.to_string().as_bytes()).ok());
    Ok(LoadedPolicy {
        path: path.to_path_buf(),
        role,
        plugin,
        raw_allowlist,
        document,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn detects_roles_by_keys() {
        let d = |v: Value| PolicyRole::detect(&v);
        assert_eq!(
            d(json!({"allowlist": {"rules": []}})),
            Ok(PolicyRole::Meshsight)
        );
        assert_eq!(d(json!({"rules": []})), Ok(PolicyRole::Allowlist));
        assert_eq!(d(json!({"targets": {}})), Ok(PolicyRole::Mirror));
        assert_eq!(d(json!({"sink": "log"})), Ok(PolicyRole::Audit));
        assert!(d(json!({"bogus": 1})).is_err());
        assert!(d(json!([1])).is_err());
    }

    #[test]
    fn errors_name_the_json_path() {
        let doc = br#"{"allowlist": {"rules": [{"name": "a", "paths": ["/a/../b"]}]}}"#;
        let err = compile(Path::new("p.json"), doc, None).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("p.json: allowlist.rules[0].paths[0]: "),
            "{text}"
        );
        assert!(text.contains("normalized"), "{text}");
    }

    #[test]
    fn a_single_job_policy_compiles_as_that_job() {
        let p = compile(
            Path::new("a.json"),
            br#"{"mode": "monitor", "rules": [{"name": "a", "paths": ["/a"]}]}"#,
            None,
        )
        .unwrap();
        assert_eq!(p.role, PolicyRole::Allowlist);
        assert!(p.plugin.allowlist.is_some() && p.plugin.mirror.is_none());
        assert_eq!(p.raw_allowlist.unwrap().rules.len(), 1);
    }
}
