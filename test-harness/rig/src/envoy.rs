//! Starting and stopping a real Envoy from a template in `envoy-config/`.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::client::{try_send, HttpRequest, HttpResponse};
use super::server::{Collector, EchoUpstream, Sensor};
use super::template;
use super::RigError;

/// The Envoy version whose binary [`envoy_binary`] picks when `ENVOY_VERSION` is not set.
pub const DEFAULT_ENVOY_VERSION: &str = "1.40.0";

/// How long [`EnvoyBuilder::start`] waits for admin `/ready` unless told otherwise. Generous:
/// V8 compiles every .wasm for every worker on a loaded 2-core machine.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(90);

/// Lines of Envoy's log that a start error carries.
const LOG_TAIL_LINES: usize = 120;

/// The project's Python tools (`make pytools`: jsonschema, ocsf-json-schema,
/// opentelemetry-proto), or `$MESHSIGHT_PYTHON`; an error naming the fix when it is missing.
pub fn tools_python() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("MESHSIGHT_PYTHON").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let p = workspace_root().join(".venv/tools/bin/python");
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!("{} is missing: run `make pytools`", p.display()))
    }
}

/// The workspace root (the directory holding `Cargo.toml`, `envoy-config/`, `target/`): the
/// nearest ancestor of this crate whose `Cargo.toml` declares `[workspace]`, so the rig works
/// wherever the crate sits in the tree.
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .map(|toml| toml.lines().any(|line| line.trim() == "[workspace]"))
                .unwrap_or(false)
        })
        .unwrap_or(manifest)
        .to_path_buf()
}

/// The Envoy binary to run: `$MESHSIGHT_ENVOY` if set, else
/// `<workspace>/.venv/envoy-<$ENVOY_VERSION or 1.40.0>/bin/envoy` (installed by `make envoy`).
pub fn envoy_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("MESHSIGHT_ENVOY").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let version = std::env::var("ENVOY_VERSION")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_ENVOY_VERSION.to_string());
    workspace_root()
        .join(".venv")
        .join(format!("envoy-{version}"))
        .join("bin")
        .join("envoy")
}

/// The directory holding the built filters: `$MESHSIGHT_WASM_DIR` if set, else
/// `<$CARGO_TARGET_DIR or <workspace>/target>/wasm32-wasip1/release` (a relative
/// `CARGO_TARGET_DIR` is taken relative to the workspace root).
pub fn wasm_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MESHSIGHT_WASM_DIR").filter(|p| !p.is_empty()) {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .map(|p| {
            if p.is_absolute() {
                p
            } else {
                workspace_root().join(p)
            }
        })
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("wasm32-wasip1").join("release")
}

/// The built module `name`: `"meshsight"` (all jobs) is `<wasm_dir()>/meshsight.wasm`; any
/// other name (the bench's `"noop"` anchor) is `<wasm_dir()>/meshsight_<name>.wasm`.
pub fn wasm_path(name: &str) -> PathBuf {
    if name == "meshsight" {
        return wasm_dir().join("meshsight.wasm");
    }
    wasm_dir().join(format!("meshsight_{name}.wasm"))
}

/// A free TCP port on 127.0.0.1 (bound then released; [`EnvoyBuilder::start`] retries on the
/// rare collision).
pub fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// A fresh directory for one Envoy's rendered config and log (or a helper's files).
pub(crate) fn new_run_dir() -> Result<PathBuf, RigError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "meshsight-rig-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    fs::create_dir_all(&dir).map_err(|source| RigError::Io {
        context: format!("creating run directory {}", dir.display()),
        source,
    })?;
    Ok(dir)
}

/// A template rendered into a variable of the main one ([`EnvoyBuilder::include`]).
#[derive(Debug, Clone)]
struct Include {
    name: String,
    template: PathBuf,
    extra: Vec<(String, String)>,
}

/// An include as read: its text and the indentation of its placeholder's line.
struct IncludeSource {
    name: String,
    path: PathBuf,
    text: String,
    extra: Vec<(String, String)>,
    indent: String,
}

/// The texts one start renders.
struct Sources {
    template_path: PathBuf,
    template_text: String,
    files: Vec<(String, PathBuf, String)>,
    includes: Vec<IncludeSource>,
}

/// The leading whitespace of the line of `template` that holds `${name}` (none if no line
/// does).
fn placeholder_indent(template: &str, name: &str) -> String {
    let placeholder = format!("${{{name}}}");
    template
        .lines()
        .find(|line| line.contains(&placeholder) && !line.trim_start().starts_with('#'))
        .map(|line| line[..line.len() - line.trim_start().len()].to_string())
        .unwrap_or_default()
}

/// Builds and starts an [`Envoy`]; see the `rig` module docs for the variables it fills.
#[derive(Debug, Clone)]
pub struct EnvoyBuilder {
    template: PathBuf,
    vars: BTreeMap<String, String>,
    files: Vec<(String, PathBuf)>,
    includes: Vec<Include>,
    binary: Option<PathBuf>,
    concurrency: u32,
    log_level: String,
    component_log_level: Option<String>,
    ready_timeout: Duration,
    extra_args: Vec<String>,
    die_with_parent: bool,
}

impl EnvoyBuilder {
    /// Sets `${name}` (overrides the rig's own value for a built-in variable, e.g. a fixed
    /// `LISTENER_PORT`). See the `template` rules for how quoted placeholders are escaped.
    pub fn var(mut self, name: &str, value: impl Into<String>) -> Self {
        self.vars.insert(name.to_string(), value.into());
        self
    }

    /// Fills `${UPSTREAM_PORT}` with `upstream`'s port.
    pub fn upstream(self, upstream: &EchoUpstream) -> Self {
        let port = upstream.port();
        self.var("UPSTREAM_PORT", port.to_string())
    }

    /// Fills `${SENSOR_PORT}` with `sensor`'s port.
    pub fn sensor(self, sensor: &Sensor) -> Self {
        let port = sensor.port();
        self.var("SENSOR_PORT", port.to_string())
    }

    /// Fills `${COLLECTOR_PORT}` with `collector`'s port.
    pub fn collector(self, collector: &Collector) -> Self {
        let port = collector.port();
        self.var("COLLECTOR_PORT", port.to_string())
    }

    /// Also renders `template` (relative to the workspace root) into `RUN_DIR/<file_name>`
    /// before Envoy starts, with the same variables (e.g. a file-based LDS resource).
    pub fn render_file(mut self, file_name: &str, template: impl AsRef<Path>) -> Self {
        self.files
            .push((file_name.to_string(), template.as_ref().to_path_buf()));
        self
    }

    /// Fills `${name}` with `template` (relative to the workspace root) rendered with the same
    /// variables plus `extra` (whose values may use the rig's variables, `${RUN_DIR}/x.log`),
    /// every line after the first indented as the line holding `${name}` is: a shipped YAML
    /// block (a list item of `access_log`, say) goes into the config exactly as shipped.
    pub fn include(
        mut self,
        name: &str,
        template: impl AsRef<Path>,
        extra: &[(&str, &str)],
    ) -> Self {
        self.includes.push(Include {
            name: name.to_string(),
            template: template.as_ref().to_path_buf(),
            extra: extra
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
        });
        self
    }

    /// Runs this binary instead of [`envoy_binary`].
    pub fn binary(mut self, binary: impl Into<PathBuf>) -> Self {
        self.binary = Some(binary.into());
        self
    }

    /// Worker threads (`--concurrency`). Default 1: one worker makes per-worker state
    /// (batches, rate limits, samplers) deterministic in tests and spares the shared cores.
    pub fn concurrency(mut self, workers: u32) -> Self {
        self.concurrency = workers;
        self
    }

    /// `--log-level` (default `info`).
    pub fn log_level(mut self, level: &str) -> Self {
        self.log_level = level.to_string();
        self
    }

    /// `--component-log-level` (default `wasm:debug`, so filter debug logs are in
    /// [`Envoy::log`]); `None` drops the flag (e.g. for benchmarks).
    pub fn component_log_level(mut self, levels: Option<&str>) -> Self {
        self.component_log_level = levels.map(str::to_string);
        self
    }

    /// How long to wait for admin `/ready` (default [`DEFAULT_READY_TIMEOUT`]).
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// Has the kernel SIGKILL Envoy when the thread that started it exits (Linux
    /// `PR_SET_PDEATHSIG`), so a killed program leaves no Envoy behind. Only for a thread that
    /// lives as long as Envoy (a program's main thread), never for test threads that hand an
    /// Envoy on.
    pub fn die_with_parent(mut self) -> Self {
        self.die_with_parent = true;
        self
    }

    /// An extra command-line argument for Envoy.
    pub fn arg(mut self, arg: &str) -> Self {
        self.extra_args.push(arg.to_string());
        self
    }

    /// Renders the template, starts Envoy and waits until admin `/ready` answers 200.
    ///
    /// Fails with Envoy's log when Envoy exits or does not get ready (a filter refusing its
    /// configuration makes Envoy exit at startup: the error then holds the filter's message).
    pub fn start(self) -> Result<Envoy, RigError> {
        let binary = self.binary_path()?;
        let sources = self.sources()?;
        // The ports the rig picks may, rarely, be taken by someone else before Envoy binds
        // them: retry with fresh ones.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let run_dir = new_run_dir()?;
            let (config_path, vars) = self.render_into(&sources, &run_dir)?;
            match self.launch(&binary, &config_path, &run_dir, vars) {
                Ok(envoy) => return Ok(envoy),
                Err(err) if attempt < 3 && err.is_port_collision() && self.picks_ports() => {
                    continue
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Renders the template as [`EnvoyBuilder::start`] would and runs `envoy --mode validate`
    /// on it instead of starting Envoy: [`RigError::Invalid`] with Envoy's output when Envoy
    /// refuses the config (e.g. a field this version does not know).
    pub fn validate(self) -> Result<(), RigError> {
        let binary = self.binary_path()?;
        let sources = self.sources()?;
        let run_dir = new_run_dir()?;
        let (config_path, _) = self.render_into(&sources, &run_dir)?;
        let result = validate_config(&binary, &config_path);
        // Kept when refused, like a failed start, so the config can be read.
        if result.is_ok() {
            let _ = fs::remove_dir_all(&run_dir);
        }
        result
    }

    fn binary_path(&self) -> Result<PathBuf, RigError> {
        let binary = self.binary.clone().unwrap_or_else(envoy_binary);
        if binary.is_file() {
            Ok(binary)
        } else {
            Err(RigError::EnvoyMissing { path: binary })
        }
    }

    /// Every template this start reads, read once (a port retry renders them again).
    fn sources(&self) -> Result<Sources, RigError> {
        let read = |path: &Path| {
            let full = workspace_root().join(path);
            read_template(&full).map(|text| (full, text))
        };
        let (template_path, template_text) = read(&self.template)?;
        let files = self
            .files
            .iter()
            .map(|(name, path)| read(path).map(|(full, text)| (name.clone(), full, text)))
            .collect::<Result<Vec<_>, _>>()?;
        let includes = self
            .includes
            .iter()
            .map(|include| {
                read(&include.template).map(|(full, text)| {
                    let indent = placeholder_indent(&template_text, &include.name);
                    (include, full, text, indent)
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Sources {
            template_path,
            template_text,
            files,
            includes: includes
                .into_iter()
                .map(|(include, full, text, indent)| IncludeSource {
                    name: include.name.clone(),
                    path: full,
                    text,
                    extra: include.extra.clone(),
                    indent,
                })
                .collect(),
        })
    }

    /// Renders everything into `run_dir`; returns the config's path and the variables used.
    fn render_into(
        &self,
        sources: &Sources,
        run_dir: &Path,
    ) -> Result<(PathBuf, BTreeMap<String, String>), RigError> {
        let mut vars = self.vars_for(run_dir)?;
        for include in &sources.includes {
            let mut own = vars.clone();
            for (name, value) in &include.extra {
                // An extra value may use the rig's variables (`${RUN_DIR}/access.ndjson`).
                let value = render_or_error(&include.path, value, &vars)?;
                own.insert(name.clone(), value);
            }
            let block = render_or_error(&include.path, &include.text, &own)?;
            let block = block
                .trim_end()
                .replace('\n', &format!("\n{}", include.indent));
            vars.insert(include.name.clone(), block);
        }
        for (name, path, text) in &sources.files {
            let rendered = render_or_error(path, text, &vars)?;
            write_file(&run_dir.join(name), &rendered)?;
        }
        let config = render_or_error(&sources.template_path, &sources.template_text, &vars)?;
        check_wasm_files(&config, &vars)?;
        let config_path = run_dir.join("envoy.yaml");
        write_file(&config_path, &config)?;
        Ok((config_path, vars))
    }

    fn picks_ports(&self) -> bool {
        !(self.vars.contains_key("LISTENER_PORT") && self.vars.contains_key("ADMIN_PORT"))
    }

    /// Built-in variables, then the user's (which win).
    fn vars_for(&self, run_dir: &Path) -> Result<BTreeMap<String, String>, RigError> {
        let port = || {
            free_port().map_err(|source| RigError::Io {
                context: "picking a free port".to_string(),
                source,
            })
        };
        let mut vars = BTreeMap::new();
        for name in [
            "LISTENER_PORT",
            "ADMIN_PORT",
            "UPSTREAM_PORT",
            "SENSOR_PORT",
            "COLLECTOR_PORT",
        ] {
            // Unset server ports get a free port nobody listens on: a dead host.
            vars.insert(name.to_string(), port()?.to_string());
        }
        vars.insert("WASM_DIR".to_string(), wasm_dir().display().to_string());
        vars.insert("RUN_DIR".to_string(), run_dir.display().to_string());
        vars.insert(
            "WORKSPACE".to_string(),
            workspace_root().display().to_string(),
        );
        vars.extend(self.vars.clone());
        Ok(vars)
    }

    fn launch(
        &self,
        binary: &Path,
        config_path: &Path,
        run_dir: &Path,
        vars: BTreeMap<String, String>,
    ) -> Result<Envoy, RigError> {
        let port = |name: &str| -> Result<u16, RigError> {
            let text = vars.get(name).map(String::as_str).unwrap_or("");
            text.parse().map_err(|_| RigError::BadVariable {
                name: name.to_string(),
                value: text.to_string(),
            })
        };
        let listener_port = port("LISTENER_PORT")?;
        let admin_port = port("ADMIN_PORT")?;
        let log_path = run_dir.join("envoy.log");
        let log_file = File::create(&log_path).map_err(|source| RigError::Io {
            context: format!("creating {}", log_path.display()),
            source,
        })?;
        let log_file_err = log_file.try_clone().map_err(|source| RigError::Io {
            context: "duplicating the log file handle".to_string(),
            source,
        })?;
        let mut command = Command::new(binary);
        command
            .arg("-c")
            .arg(config_path)
            .arg("--concurrency")
            .arg(self.concurrency.to_string())
            .arg("--log-level")
            .arg(&self.log_level)
            // No shared memory, no base-id: parallel Envoys never clash.
            .arg("--disable-hot-restart")
            .arg("--drain-time-s")
            .arg("1");
        if let Some(levels) = &self.component_log_level {
            command.arg("--component-log-level").arg(levels);
        }
        command
            .args(&self.extra_args)
            .current_dir(run_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file))
            .stderr(Stdio::from(log_file_err));
        command.process_group(0);
        if self.die_with_parent {
            set_parent_death_signal(&mut command);
        }
        let child = command.spawn().map_err(|source| RigError::Io {
            context: format!("running {}", binary.display()),
            source,
        })?;
        let mut envoy = Envoy {
            child: Some(child),
            pid: 0,
            listener_port,
            admin_port,
            run_dir: run_dir.to_path_buf(),
            log_path,
            vars,
            keep_run_dir: false,
        };
        envoy.pid = envoy.child.as_ref().map(Child::id).unwrap_or(0);
        envoy.wait_ready(self.ready_timeout)?;
        Ok(envoy)
    }
}

/// Makes the kernel SIGKILL the child when the spawning thread exits.
#[allow(unsafe_code)]
fn set_parent_death_signal(command: &mut Command) {
    // SAFETY: the closure runs between fork and exec and only calls prctl(2), which is
    // async-signal-safe and touches no memory shared with the parent.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            Ok(())
        });
    }
}

fn read_template(path: &Path) -> Result<String, RigError> {
    fs::read_to_string(path).map_err(|source| RigError::Io {
        context: format!("reading template {}", path.display()),
        source,
    })
}

fn render_or_error(
    path: &Path,
    text: &str,
    vars: &BTreeMap<String, String>,
) -> Result<String, RigError> {
    template::render(text, vars).map_err(|names| RigError::UnknownVariables {
        template: path.to_path_buf(),
        names,
    })
}

fn write_file(path: &Path, contents: &str) -> Result<(), RigError> {
    fs::write(path, contents).map_err(|source| RigError::Io {
        context: format!("writing {}", path.display()),
        source,
    })
}

/// Every `<WASM_DIR>/*.wasm` the rendered config names must exist: say `make wasm` rather
/// than let Envoy fail on it.
fn check_wasm_files(config: &str, vars: &BTreeMap<String, String>) -> Result<(), RigError> {
    let Some(dir) = vars.get("WASM_DIR") else {
        return Ok(());
    };
    let mut rest = config;
    while let Some(at) = rest.find(dir.as_str()) {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '}' || c == ',')
            .unwrap_or(tail.len());
        let candidate = &tail[..end];
        if candidate.ends_with(".wasm") && !Path::new(candidate).is_file() {
            return Err(RigError::WasmMissing {
                path: PathBuf::from(candidate),
            });
        }
        rest = &tail[end.max(1)..];
    }
    Ok(())
}

/// A running Envoy. Dropping it stops Envoy (SIGTERM, then SIGKILL) and removes its run
/// directory, which is kept when the thread is panicking so a failed test can be inspected.
#[derive(Debug)]
pub struct Envoy {
    child: Option<Child>,
    pid: u32,
    listener_port: u16,
    admin_port: u16,
    run_dir: PathBuf,
    log_path: PathBuf,
    vars: BTreeMap<String, String>,
    keep_run_dir: bool,
}

impl Envoy {
    /// A builder for `template`, a path relative to the workspace root
    /// (`"envoy-config/e2e/chain.yaml"`).
    pub fn builder(template: impl AsRef<Path>) -> EnvoyBuilder {
        EnvoyBuilder {
            template: template.as_ref().to_path_buf(),
            vars: BTreeMap::new(),
            files: Vec::new(),
            includes: Vec::new(),
            binary: None,
            concurrency: 1,
            log_level: "info".to_string(),
            component_log_level: Some("wasm:debug".to_string()),
            ready_timeout: DEFAULT_READY_TIMEOUT,
            extra_args: Vec::new(),
            die_with_parent: false,
        }
    }

    /// The listener port (`${LISTENER_PORT}`).
    pub fn port(&self) -> u16 {
        self.listener_port
    }

    /// The admin port (`${ADMIN_PORT}`).
    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    /// Envoy's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.listener_port)
    }

    /// The directory holding the rendered config (`envoy.yaml`), `envoy.log` and any
    /// [`EnvoyBuilder::render_file`] output (`${RUN_DIR}`).
    pub fn run_dir(&self) -> PathBuf {
        self.run_dir.clone()
    }

    /// The variables the template was rendered with.
    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.vars
    }

    /// Renders another template (relative to the workspace root) with this Envoy's variables
    /// plus `extra`.
    pub fn render(
        &self,
        template: impl AsRef<Path>,
        extra: &[(&str, &str)],
    ) -> Result<String, RigError> {
        let path = workspace_root().join(template);
        let text = read_template(&path)?;
        let mut vars = self.vars.clone();
        for (name, value) in extra {
            vars.insert((*name).to_string(), (*value).to_string());
        }
        render_or_error(&path, &text, &vars)
    }

    /// Writes `RUN_DIR/<file_name>` atomically (write then rename), as Envoy's file-based
    /// xDS watchers expect.
    pub fn write_run_file(&self, file_name: &str, contents: &str) -> Result<(), RigError> {
        let tmp = self.run_dir.join(format!(".{file_name}.tmp"));
        write_file(&tmp, contents)?;
        let path = self.run_dir.join(file_name);
        fs::rename(&tmp, &path).map_err(|source| RigError::Io {
            context: format!("renaming to {}", path.display()),
            source,
        })
    }

    /// Everything Envoy logged so far.
    pub fn log(&self) -> String {
        fs::read(&self.log_path)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log(), lines)
    }

    /// Waits up to `timeout` until the log contains `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// `GET path` on the admin port.
    pub fn admin_get(&self, path: &str) -> Result<HttpResponse, RigError> {
        self.admin(HttpRequest::get(path))
    }

    /// `POST path` on the admin port (e.g. `/logging?wasm=trace`, `/reset_counters`).
    pub fn admin_post(&self, path: &str) -> Result<HttpResponse, RigError> {
        self.admin(HttpRequest::post(path))
    }

    fn admin(&self, request: HttpRequest) -> Result<HttpResponse, RigError> {
        let request = request.timeout(Duration::from_secs(10));
        try_send(self.admin_port, &request).map_err(|source| RigError::Io {
            context: format!(
                "admin {} {}",
                request.method,
                String::from_utf8_lossy(&request.target)
            ),
            source,
        })
    }

    /// Counters and gauges from admin `/stats?format=json` (histograms left out); a metric a
    /// filter defined is there both as `wasmcustom.<name>` and as `<name>`. Empty when the
    /// admin endpoint cannot be read.
    pub fn stats(&self) -> HashMap<String, u64> {
        let mut stats = HashMap::new();
        let Ok(response) = self.admin_get("/stats?format=json") else {
            return stats;
        };
        let Ok(json) = response.json() else {
            return stats;
        };
        let entries = json
            .get("stats")
            .and_then(|s| s.as_array())
            .cloned()
            .unwrap_or_default();
        for entry in entries {
            if let (Some(name), Some(value)) = (
                entry.get("name").and_then(|n| n.as_str()),
                entry.get("value").and_then(|v| v.as_u64()),
            ) {
                // Filter-defined metrics also under the name the filter gave them.
                if let Some(own) = name.strip_prefix("wasmcustom.") {
                    stats.insert(own.to_string(), value);
                }
                stats.insert(name.to_string(), value);
            }
        }
        stats
    }

    /// One counter or gauge. Metrics a filter defines (proxy-wasm `define_metric`) are found
    /// by the name the filter gave, whether or not Envoy shows them under its `wasmcustom.`
    /// namespace.
    pub fn stat(&self, name: &str) -> Option<u64> {
        let stats = self.stats();
        stats
            .get(name)
            .or_else(|| stats.get(&format!("wasmcustom.{name}")))
            .copied()
    }

    /// Waits up to `timeout` until [`Envoy::stat`] `name` is at least `min`; returns the
    /// value then, or `None` on timeout.
    pub fn wait_for_stat(&self, name: &str, min: u64, timeout: Duration) -> Option<u64> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(value) = self.stat(name).filter(|v| *v >= min) {
                return Some(value);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits up to `timeout` until [`Envoy::stat`] `name` reads exactly `expected` (a filter
    /// that flushes its counters on a tick shows them late, never wrong); returns the last
    /// value read, so a caller's `assert_eq!` shows what Envoy had instead.
    pub fn settled_stat(&self, name: &str, expected: u64, timeout: Duration) -> Option<u64> {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.stat(name);
            if value == Some(expected) || Instant::now() >= deadline {
                return value;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Envoy's resident memory (`VmRSS`), if the process is alive.
    pub fn rss_bytes(&self) -> Option<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Stops Envoy: SIGTERM, up to 5 s for it to exit, then SIGKILL. Idempotent.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        terminate(self.pid);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        child.wait().ok()
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), RigError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    self.keep_run_dir = true;
                    return Err(RigError::EnvoyExited {
                        status: status.to_string(),
                        log_tail: self.log_tail(LOG_TAIL_LINES),
                        run_dir: self.run_dir.clone(),
                    });
                }
            }
            let ready = try_send(
                self.admin_port,
                &HttpRequest::get("/ready").timeout(Duration::from_secs(2)),
            );
            if matches!(ready, Ok(ref r) if r.status == 200) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.stop();
                self.keep_run_dir = true;
                return Err(RigError::NotReady {
                    timeout,
                    log_tail: self.log_tail(LOG_TAIL_LINES),
                    run_dir: self.run_dir.clone(),
                });
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        self.stop();
        if self.keep_run_dir || thread::panicking() {
            eprintln!(
                "meshsight rig: Envoy run directory kept for inspection: {}",
                self.run_dir.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.run_dir);
        }
    }
}

/// Sends SIGTERM to `pid`.
#[allow(unsafe_code)]
fn terminate(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    if pid <= 0 {
        return;
    }
    // SAFETY: kill(2) with a positive pid of a child we spawned and have not reaped.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}

/// The last `lines` lines of `text`.
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The version of the Envoy `binary` as `(major, minor, patch)`, from `envoy --version`
/// (`envoy  version: <sha>/1.40.0/Clean/RELEASE/BoringSSL`).
pub fn envoy_version(binary: &Path) -> Result<(u32, u32, u32), RigError> {
    let output = Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|source| RigError::Io {
            context: format!("running {} --version", binary.display()),
            source,
        })?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let parsed = text
        .split("version: ")
        .nth(1)
        .and_then(|rest| rest.split('/').nth(1))
        .and_then(|v| {
            let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
            Some((parts.next()??, parts.next()??, parts.next()??))
        });
    parsed.ok_or_else(|| RigError::Io {
        context: format!("reading the version of {}", binary.display()),
        source: io::Error::new(io::ErrorKind::InvalidData, text.trim().to_string()),
    })
}

/// Runs `envoy --mode validate -c <config>` and returns Envoy's output on failure.
pub fn validate_config(binary: &Path, config: &Path) -> Result<(), RigError> {
    let output = Command::new(binary)
        .arg("--mode")
        .arg("validate")
        .arg("-c")
        .arg(config)
        .arg("--disable-hot-restart")
        .stdin(Stdio::null())
        .output()
        .map_err(|source| RigError::Io {
            context: format!("running {}", binary.display()),
            source,
        })?;
    if output.status.success() {
        Ok(())
    } else {
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        Err(RigError::Invalid {
            config: config.to_path_buf(),
            log_tail: tail(&text, LOG_TAIL_LINES),
        })
    }
}
