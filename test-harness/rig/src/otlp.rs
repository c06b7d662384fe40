//! An OTLP logs receiver for tests: `scripts/otlp_logs_receiver.py`, which decodes every export
//! with the official `opentelemetry-proto` messages (the oracle: the rig does not decode OTLP
//! itself), run from the project's Python tools and read back as JSON lines.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::envoy::{tools_python, workspace_root};
use super::RigError;

/// How long [`OtlpReceiver::start`] waits for the receiver to listen (Python imports grpcio).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running OTLP receiver: OTLP/HTTP always, OTLP/gRPC when asked; stopped (by PID) on drop.
pub struct OtlpReceiver {
    child: Child,
    dir: PathBuf,
    http_port: u16,
    grpc_port: Option<u16>,
}

impl OtlpReceiver {
    /// Starts the receiver on free `127.0.0.1` ports. `answers` is its `--answers` list for
    /// OTLP/HTTP (e.g. `"503:retry-after=1,200"`; empty: always 200); `grpc` also serves
    /// OTLP/gRPC (always answered OK).
    pub fn start(answers: &str, grpc: bool) -> Result<Self, RigError> {
        let python = tools_python().map_err(|message| RigError::Io {
            context: "starting the OTLP receiver".to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, message),
        })?;
        let dir = super::envoy::new_run_dir()?;
        let io = |context: &str| {
            let context = context.to_string();
            move |source| RigError::Io { context, source }
        };
        let mut command = Command::new(python);
        command
            .arg(workspace_root().join("scripts/otlp_logs_receiver.py"))
            .arg("--port-file")
            .arg(dir.join("http.port"))
            .arg("--out")
            .arg(dir.join("requests.ndjson"))
            .arg("--answers")
            .arg(answers)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                fs::File::create(dir.join("receiver.log")).map_err(io("creating receiver.log"))?,
            ));
        if grpc {
            command.arg("--grpc-port-file").arg(dir.join("grpc.port"));
        }
        let child = command
            .spawn()
            .map_err(io("running otlp_logs_receiver.py"))?;
        let mut receiver = Self {
            child,
            dir,
            http_port: 0,
            grpc_port: None,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let http = read_port(&receiver.dir.join("http.port"));
            let grpc_port = read_port(&receiver.dir.join("grpc.port"));
            if let (Some(http), true) = (http, !grpc || grpc_port.is_some()) {
                receiver.http_port = http;
                receiver.grpc_port = grpc_port;
                return Ok(receiver);
            }
            let exited = matches!(receiver.child.try_wait(), Ok(Some(_)));
            if exited || Instant::now() >= deadline {
                let log = fs::read_to_string(receiver.dir.join("receiver.log")).unwrap_or_default();
                return Err(RigError::Io {
                    context: "starting the OTLP receiver".to_string(),
                    source: std::io::Error::other(format!(
                        "not listening (exited: {exited}); its log:\n{log}"
                    )),
                });
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The OTLP/HTTP port (POST `/v1/logs`).
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// The OTLP/gRPC port, when started with `grpc`.
    pub fn grpc_port(&self) -> Option<u16> {
        self.grpc_port
    }

    /// One JSON object per export received so far, in order: `transport` (`http`/`grpc`),
    /// `path`, `content_type`, `status` (the answer), `at` (epoch s), `resource`, `scope` and
    /// `records` (`body`, `body_kind`, `time_unix_nano`, `observed_time_unix_nano`,
    /// `severity_number`, `event_name`, `attributes`), or `error` when it did not decode.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        fs::read_to_string(self.dir.join("requests.ndjson"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Waits up to `timeout` until at least `n` exports arrived; returns all so far.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<serde_json::Value> {
        self.wait_until(timeout, |requests| requests.len() >= n)
    }

    /// Waits up to `timeout` until `done(exports so far)`; returns all so far.
    pub fn wait_until(
        &self,
        timeout: Duration,
        done: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.requests();
            if done(&got) || Instant::now() >= deadline {
                return got;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn read_port(path: &Path) -> Option<u16> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}
