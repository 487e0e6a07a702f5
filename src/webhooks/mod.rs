//! Outgoing webhooks, following Standard Webhooks (INTEGRATION.md).
//!
//! Signatures and the outbound client are the foundations the delivery worker stands on:
//!
//! - [`signature`]: `whsec_` secrets (32 random bytes generated, 24 to 64 accepted, never in
//!   `Debug` or errors) and the `webhook-signature` header. During a secret's rotation the
//!   message is signed with every live secret, space-separated, so a receiver that holds
//!   either secret verifies; tests check this with the reference library from PyPI.
//! - [`client`]: the one outbound client for deliveries. It refuses loopback, private,
//!   link-local and other non-public addresses on the *resolved* address (IPv4-mapped IPv6
//!   judged by its IPv4 address), connects only to the addresses it checked (so DNS
//!   rebinding cannot get past it), does not follow redirects (a 3xx is a failed attempt),
//!   uses no proxy, gives each attempt 15 s (`CONSENTRY_WEBHOOK_TIMEOUT`), and reports status, `Retry-After` and the time
//!   taken without ever quoting the body, the secret or the URL in an error.
//!   `CONSENTRY_WEBHOOK_ALLOW_PRIVATE=true` lifts the address guard for the demo and tests.
//! - [`worker`]: the background task of `serve` that claims due deliveries under a lease,
//!   sends them (16 at once), and records each attempt; [`schedule`] decides what follows
//!   an attempt (the specification's retry schedule with jitter, `Retry-After`, `410`).
//!
//! The store keeps the rest (store/webhook.rs, migration 20261130000004_webhooks.sql):
//! endpoints (an endpoint's secret is derived from a stored salt under the session key, see
//! [`WebhookSecret::derive`], so the database never holds it), the event outbox written in
//! the transaction of the change each event reports, one delivery per (event, endpoint),
//! and the leases workers claim deliveries with.

/// The outbound client: address guard, no redirects, a timeout per attempt.
pub mod client;
/// The rules an endpoint's URL, description and event types meet, and its secret.
pub mod endpoints;
/// What follows an attempt: the retry schedule, jitter, `Retry-After`, `410 Gone`.
pub mod schedule;
/// Standard Webhooks signatures and `whsec_` secrets.
pub mod signature;
/// The background task that sends due deliveries.
pub mod worker;

pub use client::{DeliveryClient, DeliveryError, DeliveryOutcome, NonPublic};
pub use schedule::RetrySchedule;
pub use signature::{VerifyError, WebhookSecret, sign, verify};
pub use worker::WebhookWorker;
