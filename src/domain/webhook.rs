//! Webhook events and endpoints: the vocabulary the outbox, the worker, the dashboard and
//! the API share.

use std::fmt;

use super::TenantStatus;

/// The types of event consentry sends. Receivers must ignore types they do not know: new
/// ones may be added (the README's catalogue says so).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A tenant's consent was verified for the first time.
    TenantConnected,
    /// A verified tenant's status moved (revoked, missing permissions, failing, gone,
    /// recovered), or a tenant's verification gave up.
    TenantStatusChanged,
    /// An administrator declined consent on Microsoft's page (for a sign-up we started).
    TenantConsentDeclined,
    /// Microsoft rejects consentry's own credential or requests (raised), or accepts them
    /// again (cleared).
    AppCredentialAlert,
}

impl EventType {
    pub const ALL: [EventType; 4] = [
        EventType::TenantConnected,
        EventType::TenantStatusChanged,
        EventType::TenantConsentDeclined,
        EventType::AppCredentialAlert,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::TenantConnected => "tenant.connected",
            EventType::TenantStatusChanged => "tenant.status_changed",
            EventType::TenantConsentDeclined => "tenant.consent_declined",
            EventType::AppCredentialAlert => "app.credential_alert",
        }
    }

    pub fn parse(raw: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == raw)
    }

    /// Words for people (the dashboard's checkboxes, the docs).
    pub fn description(self) -> &'static str {
        match self {
            EventType::TenantConnected => "A tenant's consent was verified for the first time.",
            EventType::TenantStatusChanged => {
                "A tenant's status changed: revoked, missing permissions, failing, gone, recovered, or verification failed."
            }
            EventType::TenantConsentDeclined => {
                "An administrator declined consent for a sign-up started here."
            }
            EventType::AppCredentialAlert => {
                "Microsoft started (raised) or stopped (cleared) rejecting consentry's own credential."
            }
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The event types an endpoint receives: all of them (including types added later), or a
/// chosen set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventFilter(Vec<EventType>);

impl EventFilter {
    /// Every type, present and future.
    pub fn all() -> EventFilter {
        EventFilter(Vec::new())
    }

    /// These types only; an empty list means every type. Duplicates are dropped and the
    /// order is the catalogue's.
    pub fn only(types: &[EventType]) -> EventFilter {
        EventFilter(
            EventType::ALL
                .into_iter()
                .filter(|t| types.contains(t))
                .collect(),
        )
    }

    /// Parses names (`tenant.connected`); the first unknown name is the error.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<EventFilter, String> {
        let mut types = Vec::new();
        for name in names {
            let name = name.trim();
            if name.is_empty() {
                continue;
            }
            types.push(EventType::parse(name).ok_or_else(|| name.to_owned())?);
        }
        Ok(EventFilter::only(&types))
    }

    /// How the store keeps it: space-separated names, empty for every type.
    pub fn to_column(&self) -> String {
        self.0
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Reads the stored form; unknown names (from a newer version) are kept out.
    pub fn from_column(raw: &str) -> EventFilter {
        EventFilter::only(
            &raw.split_whitespace()
                .filter_map(EventType::parse)
                .collect::<Vec<_>>(),
        )
    }

    pub fn is_all(&self) -> bool {
        self.0.is_empty()
    }

    /// The chosen types (empty when every type is received).
    pub fn types(&self) -> &[EventType] {
        &self.0
    }

    pub fn matches(&self, event: EventType) -> bool {
        self.0.is_empty() || self.0.contains(&event)
    }
}

/// Whether an endpoint is delivered to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointState {
    Enabled,
    /// By an operator; deliveries wait.
    Paused,
    /// The endpoint answered `410 Gone`; deliveries wait until an operator enables it.
    Disabled,
}

impl EndpointState {
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointState::Enabled => "enabled",
            EndpointState::Paused => "paused",
            EndpointState::Disabled => "disabled",
        }
    }

    pub fn parse(raw: &str) -> Option<EndpointState> {
        [
            EndpointState::Enabled,
            EndpointState::Paused,
            EndpointState::Disabled,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }
}

/// Why a tenant's status moved, as `tenant.status_changed` says it: the state it moved to,
/// or `recovered` when a tenant that had a problem works again.
pub fn status_change_reason(from: TenantStatus, to: TenantStatus) -> &'static str {
    match to {
        TenantStatus::Revoked => "revoked",
        TenantStatus::Gone => "gone",
        TenantStatus::Failing => "failing",
        TenantStatus::MissingPermissions => "missing_permissions",
        TenantStatus::Failed => "verification_failed",
        TenantStatus::Pending => "consent_recorded",
        TenantStatus::Active if from == TenantStatus::Pending => "verified",
        TenantStatus::Active => "recovered",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_round_trip_and_match() {
        let only = EventFilter::parse(["app.credential_alert", "tenant.connected", ""]).unwrap();
        assert_eq!(only.to_column(), "tenant.connected app.credential_alert");
        assert_eq!(EventFilter::from_column(&only.to_column()), only);
        assert!(only.matches(EventType::TenantConnected));
        assert!(!only.matches(EventType::TenantStatusChanged));
        assert!(EventFilter::all().matches(EventType::TenantStatusChanged));
        assert_eq!(
            EventFilter::parse(["tenant.nope"]),
            Err("tenant.nope".into())
        );
        assert!(EventFilter::from_column("future.type").is_all());
    }

    #[test]
    fn reasons_name_the_new_state_or_recovery() {
        use TenantStatus::*;
        assert_eq!(status_change_reason(Active, Revoked), "revoked");
        assert_eq!(status_change_reason(Revoked, Active), "recovered");
        assert_eq!(status_change_reason(Failing, Active), "recovered");
        assert_eq!(status_change_reason(Pending, Failed), "verification_failed");
    }
}
