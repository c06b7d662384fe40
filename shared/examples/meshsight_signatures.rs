//! `meshsight signatures test PACK REQUESTS [--alone]`: which rules fire on a set of requests
//! (raw HTTP/1.1 messages or NDJSON), before the pack is pushed. PACK is layered over the
//! built-in pack (as the mirror does) unless `--alone`; `builtin` tests the built-in pack only.
//! Until the `cli/` crate carries it: `cargo run -p meshsight-policy --example
//! meshsight_signatures -- test PACK REQUESTS`.

use meshsight_policy::mirror::signatures::pack::BUILTIN_PACK;
use meshsight_policy::mirror::signatures::test_requests::{test_requests, Layering};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let alone = args.iter().any(|a| a == "--alone");
    let rest: Vec<&String> = args.iter().filter(|a| *a != "--alone").collect();
    let [cmd, pack, requests] = rest.as_slice() else {
        eprintln!("usage: meshsight signatures test PACK|builtin REQUESTS [--alone]");
        return ExitCode::from(2);
    };
    if cmd.as_str() != "test" {
        eprintln!("unknown command {cmd:?}; usage: meshsight signatures test PACK REQUESTS");
        return ExitCode::from(2);
    }
    let read = |path: &str| std::fs::read(path).map_err(|e| format!("{path}: {e}"));
    let (pack_bytes, layering) = if pack.as_str() == "builtin" {
        (BUILTIN_PACK.as_bytes().to_vec(), Layering::Alone)
    } else {
        match read(pack) {
            Ok(b) => (
                b,
                if alone {
                    Layering::Alone
                } else {
                    Layering::OverBuiltin
                },
            ),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        }
    };
    let requests = match read(requests) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match test_requests(&pack_bytes, &requests, layering) {
        Ok(verdicts) => {
            let hits = verdicts.iter().filter(|v| v.hit()).count();
            for (i, v) in verdicts.iter().enumerate() {
                let label = v.request.name.clone().unwrap_or_else(|| format!("#{i}"));
                let rules = if v.hit() {
                    v.rules.join(",")
                } else {
                    "-".to_string()
                };
                println!("{label}\t{} {}\t{rules}", v.request.method, v.request.path);
            }
            println!("{hits} of {} requests matched", verdicts.len());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
