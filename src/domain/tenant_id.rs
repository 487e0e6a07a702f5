//! A Microsoft Entra tenant id: a GUID, kept in lower case.

use std::fmt;
use uuid::Uuid;

/// The id of a customer's tenant. Only a GUID: domains and `common`/`organizations` are
/// not tenants (the callback's `tenant` is always a GUID, ENTRA.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(Uuid);

impl TenantId {
    pub fn parse(raw: &str) -> Option<TenantId> {
        // Uuid::try_parse also takes braces and URNs; Microsoft sends the hyphenated form.
        (raw.len() == 36)
            .then(|| Uuid::try_parse(raw).ok())
            .flatten()
            .filter(|u| !u.is_nil())
            .map(TenantId)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hyphenated_non_nil_guids() {
        let id = TenantId::parse("3F2C8A71-5D94-4E0B-A6C3-1B7E9D2F4A58").unwrap();
        assert_eq!(id.to_string(), "3f2c8a71-5d94-4e0b-a6c3-1b7e9d2f4a58");
        assert!(TenantId::parse("contoso.onmicrosoft.com").is_none());
        assert!(TenantId::parse("00000000-0000-0000-0000-000000000000").is_none());
        assert!(TenantId::parse("{3f2c8a71-5d94-4e0b-a6c3-1b7e9d2f4a58}").is_none());
        assert!(TenantId::parse("3f2c8a715d944e0ba6c31b7e9d2f4a58").is_none());
        assert!(TenantId::parse("").is_none());
    }
}
