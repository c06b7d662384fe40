//! `meshsight`: check, explain, replay and learn meshsight policies.

fn main() {}
