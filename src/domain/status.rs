//! Where a tenant stands.

use std::fmt;

/// A tenant's status, as stored and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TenantStatus {
    /// The callback said "consented"; not proven yet (ENTRA.md §2: `tenant` is unauthenticated).
    Pending,
    /// A token for the tenant works and Graph answered with its organisation.
    Active,
    /// Consent is real, but the granted roles lack a required permission.
    MissingPermissions,
    /// Verification gave up; `last_error_code` says why.
    Failed,
}

impl TenantStatus {
    pub const ALL: [TenantStatus; 4] = [
        TenantStatus::Pending,
        TenantStatus::Active,
        TenantStatus::MissingPermissions,
        TenantStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Pending => "pending",
            TenantStatus::Active => "active",
            TenantStatus::MissingPermissions => "missing_permissions",
            TenantStatus::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<TenantStatus> {
        TenantStatus::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Words for people.
    pub fn label(self) -> &'static str {
        match self {
            TenantStatus::Pending => "Verifying",
            TenantStatus::Active => "Active",
            TenantStatus::MissingPermissions => "Missing permissions",
            TenantStatus::Failed => "Failed",
        }
    }
}

impl fmt::Display for TenantStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        for s in TenantStatus::ALL {
            assert_eq!(TenantStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(TenantStatus::parse("Active"), None);
    }
}
