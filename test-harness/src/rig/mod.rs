//! The real-Envoy rig: installs nothing itself (the Makefile does), starts Envoy and the helper
//! servers on free loopback ports, and stops them by PID.
