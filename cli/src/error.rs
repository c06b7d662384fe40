//! What can go wrong in a command, each error naming the thing at fault: the policy file and
//! the JSON path of the bad value, or the records file, its line and the field.

use std::path::PathBuf;

use thiserror::Error;

/// An error that stops a command.
#[derive(Debug, Error)]
pub enum CliError {
    /// A file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The policy does not compile, as the module would refuse it.
    #[error("{path}: {at}: {reason}")]
    Policy {
        /// The policy file.
        path: PathBuf,
        /// JSON path of the value at fault (`allowlist.rules[2].paths[0]`), or `(document)`.
        at: String,
        /// Why.
        reason: String,
    },
    /// The policy's role could not be told from its keys.
    #[error("{path}: cannot tell which job this policy is for ({why}); pass --role allowlist|mirror|audit|meshsight")]
    UnknownRole {
        /// The policy file.
        path: PathBuf,
        /// What was seen.
        why: String,
    },
    /// The command needs a job the policy does not configure.
    #[error("{path}: the policy has no {job} section, which `{command}` needs")]
    MissingJob {
        /// The policy file.
        path: PathBuf,
        /// The job (`allowlist`).
        job: &'static str,
        /// The command.
        command: &'static str,
    },
    /// One line of a records file is not a record this tool reads.
    #[error("{}", .0)]
    Record(#[from] RecordError),
    /// A records file without a single record.
    #[error("{path}: the file is empty: no audit records to read")]
    EmptyRecords {
        /// The records file.
        path: PathBuf,
    },
    /// The request given to `explain` cannot be read.
    #[error("request: {0}")]
    Request(String),
    /// A command-line value that makes no sense.
    #[error("{option}: {reason}")]
    Usage {
        /// The option (`--holdout`).
        option: &'static str,
        /// Why.
        reason: String,
    },
}

/// A bad line of a records file: where it is and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{file}:{line}: {field}: {reason}")]
pub struct RecordError {
    /// The records file as given.
    pub file: String,
    /// 1-based line number.
    pub line: u64,
    /// The field at fault (`http_request.url.path`), or `(line)` for the line as a whole.
    pub field: String,
    /// Why.
    pub reason: String,
}

impl CliError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> CliError {
        CliError::Io {
            path: path.into(),
            source,
        }
    }
}
