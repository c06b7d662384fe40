//! The one policy document of the `meshsight` module: `{"allowlist": {...}, "mirror": {...},
//! "audit": {...}}`, each section optional, each compiled by its job exactly as a plugin of that
//! job alone would compile it. An error in any section refuses the whole document, named with its
//! JSON path (`mirror.targets.ids.max_rps: ...`); nothing half-applies.
//!
//! The same module also runs one job per plugin (root ids [`ALLOWLIST_ROOT_ID`],
//! [`MIRROR_ROOT_ID`], [`AUDIT_ROOT_ID`]), for deployments that need the jobs in separate filter
//! positions; such a plugin's configuration is that job's section alone.

use crate::allowlist::{AllowList, RawPolicy};
use crate::audit::{AuditPolicy, RawAuditPolicy, Sink};
use crate::error::json_path::{At, Json, PathError, ReadJson};
use crate::error::ConfigError;
use crate::mirror::raw::RawMirrorPolicy;
use crate::mirror::MirrorPolicy;

#[cfg(test)]
mod tests;

/// Root id of the plugin that runs every configured job in one pass (also the default: an
/// empty root id).
pub const ONE_PASS_ROOT_ID: &str = "meshsight";
/// Root id of a plugin running the allowlist alone.
pub const ALLOWLIST_ROOT_ID: &str = "meshsight_allowlist";
/// Root id of a plugin running the mirror alone.
pub const MIRROR_ROOT_ID: &str = "meshsight_mirror";
/// Root id of a plugin running the audit alone.
pub const AUDIT_ROOT_ID: &str = "meshsight_audit";

/// Which jobs a plugin runs, from its root id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Every configured section, in one pass.
    OnePass,
    /// Only the allowlist; its configuration is the allowlist policy.
    Allowlist,
    /// Only the mirror; its configuration is the mirror policy.
    Mirror,
    /// Only the audit; its configuration is the audit policy.
    Audit,
}

impl Role {
    /// The role a root id names; `None` for a root id this module does not serve.
    pub fn from_root_id(root_id: &str) -> Option<Role> {
        match root_id {
            "" | ONE_PASS_ROOT_ID => Some(Role::OnePass),
            ALLOWLIST_ROOT_ID => Some(Role::Allowlist),
            MIRROR_ROOT_ID => Some(Role::Mirror),
            AUDIT_ROOT_ID => Some(Role::Audit),
            _ => None,
        }
    }
}

/// The document's sections, only to refuse unknown ones and missing ones; each section is then
/// read from the parsed document itself.
#[derive(Debug)]
struct RawPluginPolicy {
    allowlist: Option<()>,
    mirror: Option<()>,
    audit: Option<()>,
}

impl ReadJson for RawPluginPolicy {
    fn read_json(at: At<'_, '_>) -> Result<RawPluginPolicy, PathError> {
        let mut f = at.fields("struct RawPluginPolicy", &["allowlist", "mirror", "audit"])?;
        let value = RawPluginPolicy {
            allowlist: f.get("allowlist").flatten(),
            mirror: f.get("mirror").flatten(),
            audit: f.get("audit").flatten(),
        };
        f.finish(value)
    }
}

/// The compiled jobs of one plugin.
#[derive(Debug, Default)]
pub struct PluginPolicy {
    /// The allowlist, when configured.
    pub allowlist: Option<AllowList>,
    /// The mirror, when configured.
    pub mirror: Option<MirrorPolicy>,
    /// The audit, when configured.
    pub audit: Option<AuditPolicy>,
}

impl PluginPolicy {
    /// Compiles the configuration of a plugin with `role`.
    pub fn from_json(role: Role, bytes: &[u8]) -> Result<PluginPolicy, ConfigError> {
        let mut policy = PluginPolicy::default();
        match role {
            Role::Allowlist => policy.allowlist = Some(AllowList::from_json(bytes)?),
            Role::Mirror => policy.mirror = Some(MirrorPolicy::from_json(bytes)?),
            Role::Audit => {
                let audit = AuditPolicy::from_json(bytes)?;
                if audit.sink == Sink::AccessLog {
                    // A request an earlier plugin answers never reaches this one before Envoy
                    // logs it: its record would be missing without a trace.
                    return Err(ConfigError::new(
                        "sink",
                        "the access_log sink needs the one-plugin deployment (root id \
                         meshsight, with the allowlist in the same plugin): a separate audit \
                         plugin cannot leave the verdict of a request answered before it",
                    ));
                }
                policy.audit = Some(audit);
            }
            Role::OnePass => {
                let json = Json::parse(bytes).map_err(|e| ConfigError::new("", e.to_string()))?;
                let raw: RawPluginPolicy = ConfigError::read_json(&json, "")?;
                if raw.allowlist.is_none() && raw.mirror.is_none() && raw.audit.is_none() {
                    return Err(ConfigError::new(
                        "",
                        "no job configured: give at least one of `allowlist`, `mirror`, `audit`",
                    ));
                }
                policy.allowlist = section::<RawPolicy, _>(&json, "allowlist")?;
                policy.mirror = section::<RawMirrorPolicy, _>(&json, "mirror")?;
                policy.audit = section::<RawAuditPolicy, _>(&json, "audit")?;
            }
        }
        Ok(policy)
    }

    /// Which jobs run, for the log line at configuration (`allowlist+mirror+audit`).
    pub fn summary(&self) -> String {
        let jobs = [
            ("allowlist", self.allowlist.is_some()),
            ("mirror", self.mirror.is_some()),
            ("audit", self.audit.is_some()),
        ];
        let names: Vec<&str> = jobs.iter().filter(|(_, on)| *on).map(|(n, _)| *n).collect();
        names.join("+")
    }
}

/// Compiles section `name` of the parsed document (`None` when absent or `null`), read in place
/// rather than written out and parsed again; its errors' paths start with the section name.
// Not inlined, and its steps that do not depend on the section's types outside it: one small
// copy per job rather than three inlined into `from_json`.
#[inline(never)]
fn section<R, T>(json: &Json, name: &str) -> Result<Option<T>, ConfigError>
where
    R: ReadJson,
    T: TryFrom<R, Error = ConfigError>,
{
    let Some(raw) = section_json(json, name)? else {
        return Ok(None);
    };
    let raw: R = ConfigError::read_json(raw, name)?;
    T::try_from(raw).map(Some).map_err(|e| in_section(name, e))
}

/// The object of section `name`, if there is one (`null` counts as absent).
fn section_json<'j>(json: &'j Json, name: &str) -> Result<Option<&'j Json>, ConfigError> {
    let Json::Object(members) = json else {
        return Ok(None);
    };
    let Some((_, raw)) = members.iter().rev().find(|(key, _)| key == name) else {
        return Ok(None);
    };
    match raw {
        Json::Null => Ok(None),
        Json::Object(_) => Ok(Some(raw)),
        _ => Err(ConfigError::new(
            name,
            "must be an object (the job's policy)",
        )),
    }
}

/// A compile error of section `name`, its path prefixed with the section's.
#[cold]
#[inline(never)]
fn in_section(name: &str, e: ConfigError) -> ConfigError {
    let path = match e.path.as_str() {
        "" => name.to_string(),
        p if p.starts_with('[') => format!("{name}{p}"),
        p => format!("{name}.{p}"),
    };
    ConfigError::new(path, e.reason)
}
