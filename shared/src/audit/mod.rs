//! Audit records (OCSF HTTP Activity, ECS), redaction, sampling and the batching buffer whose
//! counters always add up.
