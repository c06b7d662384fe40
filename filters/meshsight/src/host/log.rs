//! The module's log lines, straight to `proxy_log` (the SDK went through the `log` crate's
//! facade and a boxed logger). Lines below `Info` are dropped before they are formatted, as the
//! SDK's logger did at the level meshsight set; Envoy then filters by its own level.

use std::fmt;

use meshsight_host_abi::imports as hostcalls;
use meshsight_host_abi::LogLevel;

/// The lowest level the module writes.
const LEVEL: LogLevel = LogLevel::Info;

/// Writes one line at `level` (use the crate's `log!` macro).
pub fn log(level: LogLevel, args: fmt::Arguments<'_>) {
    if level < LEVEL {
        return;
    }
    match args.as_str() {
        Some(line) => hostcalls::log(level, line),
        None => hostcalls::log(level, &args.to_string()),
    }
}
