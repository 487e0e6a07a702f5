//! Domain types, parsed once at the edge ("parse, don't validate").

pub mod api_key;
pub mod invitation;
pub mod password;
mod status;
mod tenant_id;
mod token;
pub mod webhook;

pub use status::TenantStatus;
pub use tenant_id::TenantId;
pub use token::{Keyed, RandomToken};
