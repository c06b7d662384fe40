//! Prints a generated N-rule allowlist policy (or the equivalent Envoy RBAC filter config) for
//! benchmarks: `cargo run -p meshsight-bench --example synthetic_policy -- 1000 [--rbac]`.
//! See filters/meshsight/docs/allowlist-bench.md.

use std::process::ExitCode;

use meshsight_bench::synthetic::{synthetic_policy_json, synthetic_rbac_config};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rbac = args.iter().any(|a| a == "--rbac");
    let n = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .and_then(|a| a.parse::<usize>().ok());
    let Some(n) = n else {
        eprintln!("usage: synthetic_policy <rule count> [--rbac]");
        return ExitCode::from(2);
    };
    if rbac {
        println!("{}", synthetic_rbac_config(n));
    } else {
        println!("{}", synthetic_policy_json(n));
    }
    ExitCode::SUCCESS
}
