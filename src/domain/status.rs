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
    /// Verification gave up before the consent was ever confirmed; `last_error_code` says why.
    Failed,
    /// Was active; checks now fail for reasons that may pass (Microsoft unreachable,
    /// throttled, a tenant policy).
    Failing,
    /// Was confirmed; now the app has no service principal there: the admin revoked it.
    Revoked,
    /// Microsoft no longer knows the tenant (deleted, or blocked for inactivity).
    Gone,
}

impl TenantStatus {
    pub const ALL: [TenantStatus; 7] = [
        TenantStatus::Pending,
        TenantStatus::Active,
        TenantStatus::MissingPermissions,
        TenantStatus::Failing,
        TenantStatus::Revoked,
        TenantStatus::Gone,
        TenantStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Pending => "pending",
            TenantStatus::Active => "active",
            TenantStatus::MissingPermissions => "missing_permissions",
            TenantStatus::Failed => "failed",
            TenantStatus::Failing => "failing",
            TenantStatus::Revoked => "revoked",
            TenantStatus::Gone => "gone",
        }
    }

    pub fn parse(raw: &str) -> Option<TenantStatus> {
        TenantStatus::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Only the customer's administrator can fix it, by consenting (again).
    pub fn needs_consent(self) -> bool {
        matches!(
            self,
            TenantStatus::Failed | TenantStatus::Revoked | TenantStatus::MissingPermissions
        )
    }

    /// How far the permissions the last successful check read still hold, as a CSS class:
    /// `granted` (the tenant works), `lost` (consent revoked or tenant gone: they are no
    /// longer granted), `unknown` (checks fail or none succeeded yet: last known only).
    pub fn permissions_class(self) -> &'static str {
        match self {
            TenantStatus::Active | TenantStatus::MissingPermissions => "granted",
            TenantStatus::Revoked | TenantStatus::Gone => "lost",
            TenantStatus::Pending | TenantStatus::Failing | TenantStatus::Failed => "unknown",
        }
    }

    /// How urgently it needs an operator, most urgent first (0): the console's status sort.
    /// Failing (it worked and stopped), then revoked, gone and missing permissions (only the
    /// customer can fix those), then failed (never confirmed), verifying, and active last.
    /// Migration 20261201000007_console_severity.sql computes the same ranks in SQL (the
    /// `severity` column the list's indexes serve); a test compares the two.
    pub fn severity(self) -> u8 {
        match self {
            TenantStatus::Failing => 0,
            TenantStatus::Revoked => 1,
            TenantStatus::Gone => 2,
            TenantStatus::MissingPermissions => 3,
            TenantStatus::Failed => 4,
            TenantStatus::Pending => 5,
            TenantStatus::Active => 6,
        }
    }

    /// Words for people.
    pub fn label(self) -> &'static str {
        match self {
            TenantStatus::Pending => "Verifying",
            TenantStatus::Active => "Active",
            TenantStatus::MissingPermissions => "Missing permissions",
            TenantStatus::Failed => "Failed",
            TenantStatus::Failing => "Failing",
            TenantStatus::Revoked => "Consent revoked",
            TenantStatus::Gone => "Tenant gone",
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
    fn every_status_is_listed_once() {
        let all = [
            TenantStatus::Pending,
            TenantStatus::Active,
            TenantStatus::MissingPermissions,
            TenantStatus::Failed,
            TenantStatus::Failing,
            TenantStatus::Revoked,
            TenantStatus::Gone,
        ];
        for s in all {
            assert_eq!(
                TenantStatus::ALL.iter().filter(|x| **x == s).count(),
                1,
                "{s}"
            );
        }
    }

    #[test]
    fn severities_match_the_migration_and_put_needing_attention_first() {
        let sql = include_str!("../../migrations/20261201000007_console_severity.sql");
        for s in TenantStatus::ALL {
            let clause = format!("when '{}' then {}", s.as_str(), s.severity());
            assert!(sql.contains(&clause), "{clause} in the migration");
        }
        let mut ranks: Vec<u8> = TenantStatus::ALL.iter().map(|s| s.severity()).collect();
        ranks.sort_unstable();
        ranks.dedup();
        assert_eq!(ranks.len(), TenantStatus::ALL.len(), "one rank each");
        let attention = [
            TenantStatus::Failing,
            TenantStatus::Revoked,
            TenantStatus::Gone,
            TenantStatus::MissingPermissions,
        ];
        for urgent in attention {
            for calm in [
                TenantStatus::Failed,
                TenantStatus::Pending,
                TenantStatus::Active,
            ] {
                assert!(
                    urgent.severity() < calm.severity(),
                    "{urgent} before {calm}"
                );
            }
        }
    }

    #[test]
    fn round_trips_through_text() {
        for s in TenantStatus::ALL {
            assert_eq!(TenantStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(TenantStatus::parse("Active"), None);
    }
}
