//! Unit tests of the rule engine and the built-in pack.
use super::*;
