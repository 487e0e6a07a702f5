//! consentry onboards customer organisations of a multi-tenant Microsoft Entra ID application
//! through the admin-consent flow, then acts for each of them with app-only tokens. It ships
//! an emulator of the Microsoft identity platform and Microsoft Graph so that all of it runs
//! and is tested offline.
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

/// The `consentry` command line: subcommands, their flags, and start-up errors.
pub mod cli;
/// The current time, passed in (a manual clock in tests).
pub mod clock;
/// Configuration from `CONSENTRY_*` variables and an optional TOML file.
pub mod config;
/// `consentry demo`: the admin-consent flow end to end on this machine.
pub mod demo;
/// Domain types: tenant ids, statuses, one-time tokens.
pub mod domain;
/// The offline emulator of the Microsoft identity platform and Microsoft Graph: the
/// `consentry-emulator` crate, which knows nothing of this one.
pub use consentry_emulator as emulator;
/// Microsoft's side: the admin-consent link, tokens, Graph, and what AADSTS codes mean.
pub mod entra;
/// Microsoft Graph for a tenant: paging, Retry-After, one token refresh on 401.
pub mod graph;
/// The service's own figures (Prometheus): requests, token requests, tenants, lag.
pub mod metrics;
/// All SQL: pending consent requests, invitations, tenants, their events, operators, API keys.
pub mod store;
/// Logging set-up shared by every subcommand.
pub mod telemetry;
/// The per-tenant token engine: cache, single-flight, proactive refresh, Retry-After.
pub mod tokens;
/// Proving consents: token plus Graph probe, retries, the app-wide credential alert.
pub mod verification;
/// The HTTP service: sign-up, callback, status page, operator dashboard, JSON API.
pub mod web;
/// Outgoing webhooks: Standard Webhooks signatures and the guarded delivery client.
pub mod webhooks;
