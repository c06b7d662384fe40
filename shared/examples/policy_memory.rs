//! What a policy costs in memory at configure time, for a heap profiler to count: compiles one
//! policy (the one-pass document, or one job's with its root id) and holds it, as a sidecar does.
//! Linear memory never shrinks, so the peak while compiling is what every pod pays, and what
//! stays live is its policy state. Pointers are 8 bytes here and 4 in the module, so the module's
//! figures are somewhat lower; `make v8-profile` shows the module's own heap.
//!
//! ```text
//! cargo build --release -p meshsight-policy --example policy_memory
//! heaptrack target/release/examples/policy_memory POLICY.json [ROLE]
//! valgrind --tool=massif target/release/examples/policy_memory POLICY.json [ROLE]
//! ```
//!
//! ROLE is `meshsight` (one pass, the default) or a job's root id (`meshsight_mirror`...). The
//! bench's one-pass policy: `scripts/validate_istio.py --dump-plugin-configs DIR` writes it to
//! `DIR/meshsight.json`.

use meshsight_policy::plugin::{PluginPolicy, Role};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: policy_memory POLICY.json [ROLE]");
        std::process::exit(2);
    };
    let root_id = args.next().unwrap_or_else(|| "meshsight".to_string());
    let Some(role) = Role::from_root_id(&root_id) else {
        eprintln!("unknown root id {root_id:?}");
        std::process::exit(2);
    };
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(2);
        }
    };
    match PluginPolicy::from_json(role, &bytes) {
        Ok(policy) => {
            println!("{path}: {} ({} bytes)", policy.summary(), bytes.len());
            // Held to the end like a sidecar holds it: a heap profiler reports it as not freed.
            std::mem::forget(policy);
        }
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
    }
}
