//! The real-Envoy rig: starts Envoy from a template in `envoy-config/` with free loopback ports
//! filled in, the helper servers it talks to (an echoing upstream, a mirroring sensor, an audit
//! collector, a file host for remote fetches, an OTLP receiver), a raw HTTP/1.1 client, and
//! reads Envoy's stats. It installs nothing itself: `make envoy` installs Envoy, `make wasm`
//! builds the filters.
//!
//! ```no_run
//! use meshsight_rig::{send, EchoUpstream, Envoy, HttpRequest};
//! let upstream = EchoUpstream::start();
//! let envoy = Envoy::builder("envoy-config/e2e/rig.yaml")
//!     .upstream(&upstream)
//!     .start()
//!     .expect("Envoy starts");
//! let response = send(envoy.port(), &HttpRequest::get("/hello").header("host", "example.com"));
//! assert_eq!(response.status, 200);
//! ```
//!
//! # Template variables
//! `${LISTENER_PORT}`, `${ADMIN_PORT}`: free ports picked per start. `${UPSTREAM_PORT}`,
//! `${SENSOR_PORT}`, `${COLLECTOR_PORT}`: the servers given to the builder, else a free port
//! nobody listens on (a dead host). `${WASM_DIR}`: [`wasm_dir`]. `${RUN_DIR}`: a fresh temporary
//! directory for this Envoy. `${WORKSPACE}`: the workspace root. Plus any
//! [`EnvoyBuilder::var`], which also overrides the built-in ones. Comment lines are copied as they
//! are; elsewhere a placeholder without a value is
//! an error ([`RigError::UnknownVariables`]).
//!
//! # Including a shipped block
//! [`EnvoyBuilder::include`] fills a placeholder standing alone on its line with another
//! template (an access-log block of `envoy-config/access-log/`, say) rendered with the same
//! variables, re-indented to that line: a test runs the shipped YAML, not a copy of it.
//! [`EnvoyBuilder::validate`] renders the same config and only runs `envoy --mode validate`.
//!
//! # Embedding a JSON policy
//! Write the placeholder as a whole quoted YAML scalar, `value: '${ALLOWLIST_CONFIG}'`: the
//! rig replaces it, quotes included, with a YAML double-quoted scalar holding exactly the value
//! (JSON string escaping), so any JSON text (quotes, apostrophes, backslashes, line breaks)
//! reaches the filter byte for byte. Unquoted placeholders are inserted verbatim.
//!
//! # Envoy command line
//! `-c RUN_DIR/envoy.yaml --concurrency 1 --log-level info --component-log-level wasm:debug
//! --disable-hot-restart --drain-time-s 1`, stdout and stderr to `RUN_DIR/envoy.log`
//! ([`Envoy::log`]), in its own process group. Hot restart is disabled so parallel Envoys share
//! no shared-memory region or base id.
//!
//! # Lifetime
//! [`Envoy`] and the servers stop on drop (Envoy: SIGTERM by PID, then SIGKILL after 5 s),
//! also when a test panics; keep them in the test's locals, not in a `static` (statics are never
//! dropped, so the process would outlive the test binary).

mod client;
mod envoy;
mod http;
mod otlp;
mod server;
pub mod template;

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

pub use client::{send, try_send, try_send_raw, HttpRequest, HttpResponse, DEFAULT_TIMEOUT};
pub use envoy::{
    envoy_binary, envoy_version, free_port, tools_python, validate_config, wasm_dir, wasm_path,
    workspace_root, Envoy, EnvoyBuilder, DEFAULT_ENVOY_VERSION, DEFAULT_READY_TIMEOUT,
};
pub use otlp::OtlpReceiver;
pub use server::{
    sha256_hex, Collector, CollectorBehavior, EchoUpstream, FileServer, RecordedRequest, Sensor,
};

/// Why the rig could not do what a test asked.
#[derive(Debug)]
pub enum RigError {
    /// The Envoy binary is not installed.
    EnvoyMissing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A filter the config loads is not built.
    WasmMissing {
        /// The missing file.
        path: PathBuf,
    },
    /// The template uses placeholders nobody gave a value.
    UnknownVariables {
        /// The template.
        template: PathBuf,
        /// The placeholder names, sorted.
        names: Vec<String>,
    },
    /// A variable that must be a port is not a number.
    BadVariable {
        /// The variable.
        name: String,
        /// Its value.
        value: String,
    },
    /// Envoy exited while starting (bad config, a filter refusing its policy, ...).
    EnvoyExited {
        /// Its exit status.
        status: String,
        /// The end of its log.
        log_tail: String,
        /// Its run directory (kept).
        run_dir: PathBuf,
    },
    /// Envoy did not answer 200 on admin `/ready` in time (it was stopped).
    NotReady {
        /// How long the rig waited.
        timeout: Duration,
        /// The end of its log.
        log_tail: String,
        /// Its run directory (kept).
        run_dir: PathBuf,
    },
    /// `envoy --mode validate` refused a config.
    Invalid {
        /// The config file.
        config: PathBuf,
        /// The end of Envoy's output.
        log_tail: String,
    },
    /// A file or socket operation failed.
    Io {
        /// What the rig was doing.
        context: String,
        /// The error.
        source: io::Error,
    },
}

impl RigError {
    /// Envoy's log (tail) when the error comes from Envoy itself.
    pub fn log(&self) -> Option<&str> {
        match self {
            Self::EnvoyExited { log_tail, .. }
            | Self::NotReady { log_tail, .. }
            | Self::Invalid { log_tail, .. } => Some(log_tail),
            _ => None,
        }
    }

    /// Whether Envoy failed because a port the rig picked was taken meanwhile.
    pub(crate) fn is_port_collision(&self) -> bool {
        self.log().is_some_and(|log| {
            log.contains("Address already in use") || log.contains("cannot bind")
        })
    }
}

impl fmt::Display for RigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EnvoyMissing { path } => write!(
                f,
                "no Envoy binary at {}: run `make envoy` (ENVOY_VERSION=... picks the version) or set MESHSIGHT_ENVOY",
                path.display()
            ),
            Self::WasmMissing { path } => write!(
                f,
                "filter not built: {} is missing: run `make wasm` (or set MESHSIGHT_WASM_DIR)",
                path.display()
            ),
            Self::UnknownVariables { template, names } => write!(
                f,
                "template {} uses {} but no value was given (EnvoyBuilder::var)",
                template.display(),
                names
                    .iter()
                    .map(|n| format!("${{{n}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Self::BadVariable { name, value } => {
                write!(f, "variable {name} must be a port number, got {value:?}")
            }
            Self::EnvoyExited {
                status,
                log_tail,
                run_dir,
            } => write!(
                f,
                "Envoy exited while starting ({status}); run dir {}; log tail:\n{log_tail}",
                run_dir.display()
            ),
            Self::NotReady {
                timeout,
                log_tail,
                run_dir,
            } => write!(
                f,
                "Envoy not ready on admin /ready after {timeout:?}; run dir {}; log tail:\n{log_tail}",
                run_dir.display()
            ),
            Self::Invalid { config, log_tail } => write!(
                f,
                "envoy --mode validate refused {}:\n{log_tail}",
                config.display()
            ),
            Self::Io { context, source } => write!(f, "{context}: {source}"),
        }
    }
}

impl std::error::Error for RigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
