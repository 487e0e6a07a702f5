//! Talking to Microsoft: the admin-consent link, client-credentials tokens, Graph, and
//! signing people in (OpenID Connect, `oidc.rs`).
//! Wire formats (`wire.rs`) are kept apart from what the rest of consentry sees.

mod client;
mod credential;
mod fault;
pub mod oidc;
mod wire;

pub use client::{AppToken, EntraClient, GraphError, Organization, TokenError};
pub(crate) use client::{retry_after, transport};
pub use credential::{CertificateCredential, Credential, CredentialSummary, JWT_BEARER};
pub use fault::Fault;
