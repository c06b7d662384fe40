//! Mirror policy: targets, rules, deterministic sampling, rate caps and exploit signatures.
