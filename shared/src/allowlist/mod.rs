//! Allowlist policy: rules (methods, hosts, path patterns, query constraints, sources) compiled
//! into a matcher whose cost does not grow with the rule count.
