//! `meshsight`: check, explain, replay and learn meshsight policies, and render them for
//! Istio, with the policy crate the module runs. Exit status: 0 fine, 1 the verdict asked for
//! failed (policy errors, a regression, warnings with `--deny-warnings`), 2 bad input.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use meshsight_cli::check::{analyse, never_hit, rule_hits, unseen_sources};
use meshsight_cli::evaluate::evaluate;
use meshsight_cli::istio::{render, IstioOptions};
use meshsight_cli::learn::{
    LearnCounts, LearnOptions, Learner, Proposal, SourceMode, Why, Widening,
};
use meshsight_cli::policy::{load, PolicyRole};
use meshsight_cli::quality::{held_out, Quality};
use meshsight_cli::records::RecordReader;
use meshsight_cli::replay::replay;
use meshsight_cli::request::ExplainRequest;
use meshsight_cli::signatures::test_requests::Layering;
use meshsight_cli::signatures::{self, Rules};
use meshsight_cli::traffic::MeshTraffic;
use meshsight_cli::CliError;
use meshsight_policy::allowlist::AllowList;
use meshsight_policy::decision::Mode;

/// `println!` that ignores a closed standard output (`meshsight ... | head`).
macro_rules! out {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `print!` that ignores a closed standard output.
macro_rules! outp {
    ($($arg:tt)*) => {{
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

/// meshsight policies on the command line: the module's own answers, natively.
///
/// Workflow: deploy with the allowlist in `monitor` mode, gather audit records, then
/// `meshsight learn records.ndjson > policy.json`, `meshsight check policy.json`,
/// `meshsight replay policy.json records.ndjson`, switch to `enforce` and push
/// (`meshsight istio policy.json | kubectl apply -f -`).
#[derive(Parser)]
#[command(name = "meshsight", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct PolicyArgs {
    /// Policy file: the one-pass document {"allowlist","mirror","audit"} or one job's policy.
    policy: PathBuf,
    /// Which plugin the policy is for (default: told from its top-level keys).
    #[arg(long, value_enum)]
    role: Option<PolicyRole>,
}

#[derive(Args)]
struct RecordsArgs {
    /// Count bad lines and go on, instead of stopping at the first one.
    #[arg(long)]
    skip_bad: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Compile a policy exactly as the module does; report errors with their JSON path and
    /// warn about rules that can never match, overlap, or (with --records) were never hit or
    /// admit sources that no recorded request to them came from.
    Check {
        #[command(flatten)]
        policy: PolicyArgs,
        /// Audit records (OCSF or ECS NDJSON, e.g. from monitor mode) to find rules never hit and
        /// sources no recorded request came from.
        #[arg(long)]
        records: Option<PathBuf>,
        #[command(flatten)]
        read: RecordsArgs,
        /// Exit 1 on warnings too.
        #[arg(long)]
        deny_warnings: bool,
        /// Print the findings as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run one request through the module's one pass: normalized target, allowlist verdict
    /// and rule, signature hits, mirror decision, and the audit record written.
    Explain {
        #[command(flatten)]
        policy: PolicyArgs,
        /// The request as 'METHOD /path?query' (e.g. 'GET /api/../admin'); omit or `-` to read
        /// raw HTTP/1.1 from standard input.
        request: Option<String>,
        /// :authority (Host).
        #[arg(long)]
        host: Option<String>,
        /// A request header 'name: value' (repeatable).
        #[arg(long = "header", short = 'H')]
        headers: Vec<String>,
        /// The downstream peer address (source.address).
        #[arg(long)]
        source_ip: Option<std::net::IpAddr>,
        /// The mTLS peer's SPIFFE ID (spiffe://cluster.local/ns/NS/sa/SA).
        #[arg(long)]
        principal: Option<String>,
        /// :scheme.
        #[arg(long, default_value = "http")]
        scheme: String,
        /// The status the upstream answers a forwarded request with (for the record).
        #[arg(long, default_value_t = 200)]
        upstream_status: u16,
        /// Print the explanation as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Replay audit records against a candidate policy's allowlist: verdict changes and hits
    /// per rule. Exits 1 when a request allowed then would not be allowed now.
    Replay {
        #[command(flatten)]
        policy: PolicyArgs,
        /// Audit records (OCSF or ECS NDJSON; `-` for standard input).
        records: PathBuf,
        #[command(flatten)]
        read: RecordsArgs,
        /// How many changed requests to list.
        #[arg(long, default_value_t = 20)]
        show: usize,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Propose an allowlist (JSON, on standard output) from audit records gathered in
    /// monitor mode; the report goes to standard error.
    Learn {
        /// Audit records (OCSF or ECS NDJSON; `-` for standard input, not with --holdout).
        records: PathBuf,
        #[command(flatten)]
        read: RecordsArgs,
        /// Distinct children of a path node that make it generalize to `*` or `**`.
        #[arg(long, default_value_t = 20)]
        fanout: usize,
        /// Requests through a path node before its fan-out counts.
        #[arg(long, default_value_t = 50)]
        fanout_min_requests: u64,
        /// Distinct children past which a node generalizes at once (bounds memory).
        #[arg(long, default_value_t = 1000)]
        max_children: usize,
        /// Fewest requests for a path template to be learned.
        #[arg(long, default_value_t = 1)]
        min_hits: u64,
        /// Statuses that mark a probe for something that is not there (never learned).
        #[arg(long, value_delimiter = ',', default_value = "400,404,405,501")]
        exclude_status: Vec<u16>,
        /// What callers the rules name: `principals` (the SPIFFE IDs that called: a workload is
        /// admitted only to what it was seen doing), `namespaces` (every workload of a namespace
        /// that called) or `none`. Rules whose callers had no mTLS identity name no sources.
        #[arg(long, value_enum, default_value = "principals")]
        sources: SourceMode,
        /// The proposal's mode.
        #[arg(long, value_parser = ["enforce", "monitor"], default_value = "enforce")]
        mode: String,
        /// Wrap the proposal as the one-pass document {"allowlist": ...}.
        #[arg(long)]
        one_pass: bool,
        /// Hold out this share of the records (by request id), learn from the rest and report
        /// the proposal's quality on the held-out part.
        #[arg(long)]
        holdout: Option<f64>,
    },
    /// Render the Istio WasmPlugin YAML for a policy.
    Istio {
        #[command(flatten)]
        policy: PolicyArgs,
        /// metadata.name.
        #[arg(long, default_value = "meshsight")]
        name: String,
        /// metadata.namespace.
        #[arg(long, default_value = "default")]
        namespace: String,
        /// Workload selector label 'key=value' (repeatable).
        #[arg(long = "selector")]
        selector: Vec<String>,
        /// The module's image.
        #[arg(
            long,
            default_value = "oci://registry.example.com/meshsight/meshsight:0.1.0"
        )]
        url: String,
        /// SERVER (inbound) or CLIENT (outbound).
        #[arg(long, value_parser = ["SERVER", "CLIENT"], default_value = "SERVER")]
        traffic: String,
    },
    /// Signature rules: `signatures test` shows which rules fire on a set of requests.
    Signatures {
        #[command(subcommand)]
        command: SignaturesCommand,
    },
    /// Write generated audit records of a realistic service mesh (legitimate traffic with
    /// scanners and exploit attempts mixed in), for trying learn and replay.
    Generate {
        /// How many records.
        #[arg(long, default_value_t = 10000)]
        records: u64,
        /// Seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Record format.
        #[arg(long, value_parser = ["ocsf", "ecs"], default_value = "ocsf")]
        format: String,
    },
}

#[derive(Subcommand)]
enum SignaturesCommand {
    /// Show which signature rules fire on each request, before a pack is pushed. Exits 1 when a
    /// request's `"expect": "hit"|"miss"` is not met.
    Test {
        /// `builtin`; a pack document {"pack","rules"} (layered over the built-in pack, as the
        /// mirror layers `signatures.packs`); or a policy file (its signatures exactly as the
        /// module compiles them).
        rules: String,
        /// Requests: raw HTTP/1.1 messages, or NDJSON {"method","path","headers","body"} a line
        /// (`-` for standard input).
        requests: PathBuf,
        /// Test the pack by itself, without the built-in pack under it.
        #[arg(long)]
        alone: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

enum Outcome {
    Ok,
    Failed,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::from(1),
        Err(CliError::Policy { .. } | CliError::UnknownRole { .. }) => {
            // Printed by `check`; for other commands a bad policy is bad input.
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("meshsight: {e}");
            ExitCode::from(2)
        }
    }
}

fn print_json(v: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(v).map_err(|e| CliError::Request(e.to_string()))?;
    out!("{text}");
    Ok(())
}

/// A file's bytes, or standard input's for `-`.
fn read_input(path: &Path) -> Result<Vec<u8>, CliError> {
    if path == Path::new("-") {
        let mut raw = Vec::new();
        std::io::stdin()
            .read_to_end(&mut raw)
            .map_err(|e| CliError::io("(standard input)", e))?;
        Ok(raw)
    } else {
        std::fs::read(path).map_err(|e| CliError::io(path, e))
    }
}

fn load_policy(p: &PolicyArgs) -> Result<meshsight_cli::policy::LoadedPolicy, CliError> {
    load(&p.policy, p.role).inspect_err(|e| eprintln!("error: {e}"))
}

fn allowlist_of<'p>(
    policy: &'p meshsight_cli::policy::LoadedPolicy,
    command: &'static str,
) -> Result<&'p AllowList, CliError> {
    policy
        .plugin
        .allowlist
        .as_ref()
        .ok_or_else(|| CliError::MissingJob {
            path: policy.path.clone(),
            job: "allowlist",
            command,
        })
}

fn run(command: Command) -> Result<Outcome, CliError> {
    match command {
        Command::Check {
            policy,
            records,
            read,
            deny_warnings,
            json,
        } => {
            let loaded = match load(&policy.policy, policy.role) {
                Ok(p) => p,
                Err(e @ (CliError::Policy { .. } | CliError::UnknownRole { .. })) => {
                    eprintln!("error: {e}");
                    return Ok(Outcome::Failed);
                }
                Err(e) => return Err(e),
            };
            let one_pass = loaded.role == PolicyRole::Meshsight;
            let mut findings = loaded
                .raw_allowlist
                .as_ref()
                .map(|raw| analyse(raw, one_pass))
                .unwrap_or_default();
            let mut notes = Vec::new();
            if let Some(path) = records {
                let list = allowlist_of(&loaded, "check --records")?;
                let mut reader = RecordReader::open(&path, read.skip_bad)?;
                let callers = rule_hits(list, &mut reader)?;
                let stats = reader.stats().clone();
                findings.extend(never_hit(list, &callers.hits, stats.records, one_pass));
                if let Some(raw) = &loaded.raw_allowlist {
                    findings.extend(unseen_sources(raw, &callers, one_pass));
                }
                notes.extend(stats.skipped_report());
            }
            if json {
                print_json(&serde_json::json!({
                    "policy": loaded.path,
                    "jobs": loaded.plugin.summary(),
                    "findings": findings,
                }))?;
            } else {
                for f in &findings {
                    out!("{f}");
                }
                for n in &notes {
                    eprintln!("{n}");
                }
                let rules = loaded
                    .plugin
                    .allowlist
                    .as_ref()
                    .map_or(0, |a| a.rule_count());
                out!(
                    "{}: ok ({}; {rules} allowlist rules; {} warning(s))",
                    loaded.path.display(),
                    loaded.plugin.summary(),
                    findings.len()
                );
            }
            Ok(if deny_warnings && !findings.is_empty() {
                Outcome::Failed
            } else {
                Outcome::Ok
            })
        }
        Command::Explain {
            policy,
            request,
            host,
            headers,
            source_ip,
            principal,
            scheme,
            upstream_status,
            json,
        } => {
            let loaded = load_policy(&policy)?;
            let mut req = match request.as_deref() {
                None | Some("-") => {
                    let mut raw = Vec::new();
                    std::io::stdin()
                        .read_to_end(&mut raw)
                        .map_err(|e| CliError::io("(standard input)", e))?;
                    ExplainRequest::from_raw_http(&raw)?
                }
                Some(line) => ExplainRequest::from_line(line)?,
            };
            req.scheme = scheme;
            if let Some(h) = host {
                req.authority = h;
            }
            for h in &headers {
                req.add_header_line(h)?;
            }
            req.source_ip = source_ip.or(req.source_ip);
            req.principal = principal.or(req.principal);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            let e = evaluate(&loaded.plugin, &req, upstream_status, now);
            if json {
                print_json(&e)?;
            } else {
                print_explanation(&req, &e);
            }
            Ok(Outcome::Ok)
        }
        Command::Replay {
            policy,
            records,
            read,
            show,
            json,
        } => {
            let loaded = load_policy(&policy)?;
            let list = allowlist_of(&loaded, "replay")?;
            let started = Instant::now();
            let mut reader = RecordReader::open(&records, read.skip_bad)?;
            let report = replay(list, &mut reader, show)?;
            let secs = started.elapsed().as_secs_f64();
            if json {
                print_json(&report)?;
            } else {
                out!(
                    "{} records replayed against {} in {secs:.1}s ({:.0} records/s)",
                    report.records,
                    loaded.path.display(),
                    report.records as f64 / secs.max(1e-9)
                );
                out!("  unchanged verdicts: {}", report.unchanged);
                for (k, n) in &report.changes {
                    out!("  {k}: {n}");
                }
                out!(
                    "  allowed then, not now: {}   newly allowed: {}   flagged attacks allowed: {}",
                    report.regressions,
                    report.newly_allowed,
                    report.flagged_allowed
                );
                if !report.examples.is_empty() {
                    out!("changed requests (first {}):", report.examples.len());
                    for c in &report.examples {
                        out!(
                            "  {}:{}: {} {}{} {} -> {}{}{}",
                            records.display(),
                            c.line,
                            c.method,
                            c.host,
                            c.path,
                            c.then,
                            c.now,
                            c.rule
                                .as_deref()
                                .map(|r| format!(" (rule {r})"))
                                .unwrap_or_default(),
                            if c.flagged { " [flagged attack]" } else { "" }
                        );
                    }
                }
                out!("hits per rule:");
                for (name, n) in &report.rule_hits {
                    out!("  {name}: {n}");
                }
                for line in reader.stats().skipped_report() {
                    eprintln!("{line}");
                }
            }
            Ok(if report.regressions > 0 {
                Outcome::Failed
            } else {
                Outcome::Ok
            })
        }
        Command::Learn {
            records,
            read,
            fanout,
            fanout_min_requests,
            max_children,
            min_hits,
            exclude_status,
            sources,
            mode,
            one_pass,
            holdout,
        } => {
            let options = LearnOptions {
                fanout,
                fanout_min_requests,
                max_children,
                min_hits,
                exclude_status,
                sources,
                mode: if mode == "monitor" {
                    Mode::Monitor
                } else {
                    Mode::Enforce
                },
            };
            if let Some(h) = holdout {
                if !(0.0..1.0).contains(&h) {
                    return Err(CliError::Usage {
                        option: "--holdout",
                        reason: format!("{h} must be at least 0 and below 1"),
                    });
                }
                if records == Path::new("-") {
                    return Err(CliError::Usage {
                        option: "--holdout",
                        reason: "needs a file (it is read twice), not standard input".into(),
                    });
                }
            }
            let started = Instant::now();
            let mut learner = Learner::new(options.clone());
            let mut reader = RecordReader::open(&records, read.skip_bad)?;
            while let Some(r) = reader.next_record()? {
                if holdout.is_none_or(|h| !held_out(&r, h)) {
                    learner.observe(&r);
                }
            }
            let stats = reader.stats().clone();
            let counts = learner.counts().clone();
            let triage = Learner::new(options.clone());
            let proposal = learner.proposal();
            let raw = proposal.policy.clone();
            let list = AllowList::try_from(raw.clone()).map_err(|e| CliError::Policy {
                path: "(proposal)".into(),
                at: e.path,
                reason: e.reason,
            })?;
            let secs = started.elapsed().as_secs_f64();
            let doc = if one_pass {
                serde_json::json!({ "allowlist": raw })
            } else {
                serde_json::to_value(&raw).map_err(|e| CliError::Request(e.to_string()))?
            };
            print_json(&doc)?;
            let mut err = std::io::stderr().lock();
            let _ = writeln!(
                err,
                "learned {} rules from {} of {} records in {secs:.1}s ({:.0} records/s); not learned: {} flagged as attacks, {} probe statuses, {} unlearnable",
                list.rule_count(),
                counts.learned,
                stats.records,
                stats.records as f64 / secs.max(1e-9),
                counts.flagged,
                counts.probe_status,
                counts.unlearnable
            );
            for line in stats.skipped_report() {
                let _ = writeln!(err, "{line}");
            }
            for line in widening_report(&options, &counts, &proposal, list.rule_count()) {
                let _ = writeln!(err, "{line}");
            }
            if let Some(h) = holdout {
                let mut quality = Quality {
                    holdout: h,
                    ..Quality::default()
                };
                let mut reader = RecordReader::open(&records, read.skip_bad)?;
                while let Some(r) = reader.next_record()? {
                    quality.add(&triage, &list, &r);
                }
                for line in quality.lines() {
                    let _ = writeln!(err, "{line}");
                }
            }
            Ok(Outcome::Ok)
        }
        Command::Istio {
            policy,
            name,
            namespace,
            selector,
            url,
            traffic,
        } => {
            let loaded = load_policy(&policy)?;
            let selector = selector
                .iter()
                .map(|s| {
                    s.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .ok_or_else(|| CliError::Usage {
                            option: "--selector",
                            reason: format!("{s:?}: write it as key=value"),
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let o = IstioOptions {
                name,
                namespace,
                selector,
                url,
                traffic,
            };
            outp!("{}", render(&loaded, &o));
            Ok(Outcome::Ok)
        }
        Command::Signatures {
            command:
                SignaturesCommand::Test {
                    rules,
                    requests,
                    alone,
                    json,
                },
        } => {
            let layering = if alone {
                Layering::Alone
            } else {
                Layering::OverBuiltin
            };
            // Rules that do not compile are the finding (exit 1), as in `check`.
            let rules = match Rules::load(&rules, layering) {
                Ok(r) => r,
                Err(e @ (CliError::Policy { .. } | CliError::UnknownRole { .. })) => {
                    eprintln!("error: {e}");
                    return Ok(Outcome::Failed);
                }
                Err(e) => return Err(e),
            };
            let input = read_input(&requests)?;
            let report = signatures::test(&rules, &input, &requests)?;
            if json {
                print_json(&report)?;
            } else {
                for (i, t) in report.requests.iter().enumerate() {
                    let r = &t.verdict.request;
                    let label = r.name.clone().unwrap_or_else(|| format!("#{i}"));
                    let fired = if t.verdict.hit() {
                        t.verdict.rules.join(",")
                    } else {
                        "-".to_string()
                    };
                    let flag = if t.unexpected {
                        format!(
                            "\tUNEXPECTED (expected {})",
                            r.expect.as_deref().unwrap_or("")
                        )
                    } else {
                        String::new()
                    };
                    // The response column only for a request that came with its answer.
                    let answer = t.verdict.response.as_ref().map_or(String::new(), |a| {
                        let rules = if a.rules.is_empty() {
                            "-".to_string()
                        } else {
                            a.rules.join(",")
                        };
                        format!("\tresponse {}: {rules}", a.outcome)
                    });
                    let views = t.verdict.views_text();
                    out!(
                        "{label}\t{} {}\t{fired}{answer}{flag}\t{views}",
                        r.method,
                        r.path
                    );
                }
                out!(
                    "{} of {} requests matched; {} not as expected",
                    report.matched,
                    report.requests.len(),
                    report.unexpected
                );
            }
            Ok(if report.unexpected > 0 {
                Outcome::Failed
            } else {
                Outcome::Ok
            })
        }
        Command::Generate {
            records,
            seed,
            format,
        } => {
            let mut traffic = MeshTraffic::new(seed, &format)?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
            for _ in 0..records {
                let g = traffic.next_record();
                writeln!(out, "{}", g.line).map_err(|e| CliError::io("(standard output)", e))?;
            }
            out.flush()
                .map_err(|e| CliError::io("(standard output)", e))?;
            Ok(Outcome::Ok)
        }
    }
}

/// Most widenings listed by `learn` (the rest are counted).
const MAX_WIDENINGS: usize = 200;

/// `learn`'s report of what the proposal admits beyond the learning records: where sources
/// come from, then every rule widened and why.
fn widening_report(
    options: &LearnOptions,
    counts: &LearnCounts,
    proposal: &Proposal,
    rule_count: usize,
) -> Vec<String> {
    let widenings = &proposal.widenings;
    let mut lines = Vec::new();
    let anonymous = counts.learned - counts.identified;
    lines.push(match options.sources {
        SourceMode::None => "sources: none (--sources none): every rule admits any caller".into(),
        _ if counts.learned > 0 && counts.identified == 0 => format!(
            "sources: none of the {} learned records carries an mTLS principal (SPIFFE ID), so no rule names sources and every rule admits any caller; learn from records of peers with mTLS (Istio PeerAuthentication STRICT) to name them",
            counts.learned
        ),
        SourceMode::Principals => format!(
            "sources: the principals (SPIFFE IDs) that called each path ({} of {} learned requests had one; --sources namespaces names whole namespaces)",
            counts.identified, counts.learned
        ),
        SourceMode::Namespaces => format!(
            "sources: the namespaces of the principals that called each path (--sources namespaces; {} of {} learned requests had a principal)",
            counts.identified, counts.learned
        ),
    });
    let rules: std::collections::BTreeSet<usize> = widenings.iter().map(|w| w.rule).collect();
    lines.push(format!(
        "widened: {} of {rule_count} rules ({} widening(s) over {} path templates){}",
        rules.len(),
        widenings.len(),
        proposal.templates,
        if anonymous > 0 && options.sources != SourceMode::None {
            format!("; {anonymous} learned request(s) came without an mTLS identity")
        } else {
            String::new()
        }
    ));
    // Sources first (what a compromised caller could reach), then paths.
    let mut sorted: Vec<&Widening> = widenings.iter().collect();
    sorted.sort_by_key(|w| match w.why {
        Why::Generalized { .. } => 1,
        Why::Parameterized { .. } => 2,
        _ => 0,
    });
    for w in sorted.into_iter().take(MAX_WIDENINGS) {
        lines.push(format!("  {w}"));
    }
    if widenings.len() > MAX_WIDENINGS {
        lines.push(format!(
            "  ... and {} more",
            widenings.len() - MAX_WIDENINGS
        ));
    }
    lines
}

fn print_explanation(req: &ExplainRequest, e: &meshsight_cli::evaluate::Evaluation) {
    out!(
        "request:    {} {}  (host {:?})",
        req.method,
        req.path,
        req.authority
    );
    let n = &e.normalized;
    match &n.malformed {
        Some(m) => out!("normalized: MALFORMED: {m}"),
        None => out!(
            "normalized: {}{}  host {}",
            n.path.as_deref().unwrap_or(""),
            n.query
                .as_deref()
                .map(|q| format!("?{q}"))
                .unwrap_or_default(),
            n.host.as_deref().unwrap_or("(none)")
        ),
    }
    match &e.allowlist {
        None => out!("allowlist:  (not configured)"),
        Some(a) => {
            let d = &a.decision;
            let outcome = serde_json::to_value(d.outcome)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            outp!("allowlist:  {outcome}");
            if let Some(rule) = &d.rule {
                outp!(" by rule {rule}");
            }
            if let Some(reason) = &d.reason {
                outp!(" ({reason})");
            }
            if let Some(s) = a.response_status {
                outp!(", answered {s} locally");
            }
            if let Some(p) = &a.rewritten_path {
                outp!(", :path rewritten to {p}");
            }
            out!();
        }
    }
    if e.signatures.is_empty() {
        out!("signatures: none");
    } else {
        out!("signatures: {}", e.signatures.join(", "));
    }
    match &e.mirror {
        None => out!("mirror:     (not configured)"),
        Some(m) => out!(
            "mirror:     {}",
            serde_json::to_string(m).unwrap_or_default()
        ),
    }
    out!("status:     {}", e.status);
    let a = &e.audit;
    out!(
        "audit:      {}{}",
        if a.recorded {
            "recorded"
        } else {
            "not recorded (sampled out)"
        },
        if a.configured {
            ""
        } else {
            " (no audit section: the default audit policy's record)"
        }
    );
    out!("{}", a.record);
}
