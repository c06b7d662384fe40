//! The one clock: the host's wall time, read only where a job needs now (a rate cap, a
//! delivery, a record's time), never per request on a path that does not.

use meshsight_host_abi::imports as hostcalls;

/// Now, in nanoseconds since the Unix epoch (0 if the host refuses, which Envoy never does).
pub fn now_nanos() -> u64 {
    hostcalls::current_time_nanos().unwrap_or(0)
}
