//! Request-target normalization: the one canonical path and host that the allowlist judges,
//! with ambiguous encodings rejected rather than guessed at.
