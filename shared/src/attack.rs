//! MITRE ATT&CK techniques for the mirror's signature categories, as OCSF `attacks` entries
//! (the `security_control` profile's `attack` object: tactic and technique, each with uid and
//! name). A signature with no mapping (a custom literal) adds no entry: an unknown technique is
//! better absent than guessed.

/// One ATT&CK technique with the tactic it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attack {
    /// Technique id, e.g. `T1190`.
    pub technique_uid: &'static str,
    /// Technique name.
    pub technique_name: &'static str,
    /// Tactic id, e.g. `TA0001`.
    pub tactic_uid: &'static str,
    /// Tactic name.
    pub tactic_name: &'static str,
}

/// The ATT&CK version the table follows.
pub const ATTACK_VERSION: &str = "16.1";

const EXPLOIT_PUBLIC_FACING: Attack = Attack {
    technique_uid: "T1190",
    technique_name: "Exploit Public-Facing Application",
    tactic_uid: "TA0001",
    tactic_name: "Initial Access",
};

/// The technique a signature category indicates, by the category's name in decisions.
pub fn for_signature(name: &str) -> Option<Attack> {
    Some(match name {
        "confluence_ognl" | "log4shell" | "spring4shell" | "path_traversal" => {
            EXPLOIT_PUBLIC_FACING
        }
        "wordpress_xmlrpc" => Attack {
            technique_uid: "T1110",
            technique_name: "Brute Force",
            tactic_uid: "TA0006",
            tactic_name: "Credential Access",
        },
        "kubelet_api" | "docker_api" => Attack {
            technique_uid: "T1609",
            technique_name: "Container Administration Command",
            tactic_uid: "TA0002",
            tactic_name: "Execution",
        },
        "cloud_metadata" => Attack {
            technique_uid: "T1552.005",
            technique_name: "Cloud Instance Metadata API",
            tactic_uid: "TA0006",
            tactic_name: "Credential Access",
        },
        "download_exec" => Attack {
            technique_uid: "T1105",
            technique_name: "Ingress Tool Transfer",
            tactic_uid: "TA0011",
            tactic_name: "Command and Control",
        },
        _ => return None,
    })
}

/// The distinct techniques of `signatures`, in first-seen order.
pub fn for_signatures<'a>(signatures: impl IntoIterator<Item = &'a str>) -> Vec<Attack> {
    let mut out: Vec<Attack> = Vec::new();
    for attack in signatures.into_iter().filter_map(for_signature) {
        if !out.contains(&attack) {
            out.push(attack);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn web_exploits_map_to_initial_access_and_duplicates_collapse() {
        let a = for_signatures([
            "log4shell",
            "spring4shell",
            "wordpress_xmlrpc",
            "my-literal",
        ]);
        assert_eq!(a.len(), 2, "{a:?}");
        assert_eq!(a[0].technique_uid, "T1190");
        assert_eq!(a[1].technique_uid, "T1110");
        assert!(for_signature("my-literal").is_none());
    }
}
