//! The emulator's integration tests: one binary, real HTTP on port 0.

mod helpers;
mod python;

mod command;
mod emulator_certificates;
mod emulator_consent;
mod emulator_control;
mod emulator_faults;
mod emulator_fixtures;
mod emulator_graph;
mod emulator_hardening;
mod emulator_hostile;
mod emulator_https;
mod emulator_oidc;
mod emulator_token;
mod independence;
