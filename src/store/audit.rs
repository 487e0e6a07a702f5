//! The audit trail: what operators did on the dashboard, append-only (triggers in the
//! schema refuse updates and deletes).

use time::OffsetDateTime;

use super::{Store, StoreError, ts};

/// What was done. The names are stable: they are filtered on and exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    /// A sign-in with a password.
    SignIn,
    /// A sign-in with Microsoft (`CONSENTRY_OPERATOR_TENANT`).
    SignInMicrosoft,
    SignOut,
    VerifyNow,
    InvitationCreate,
    InvitationRevoke,
    ApiKeyCreate,
    ApiKeyRevoke,
    WebhookCreate,
    WebhookChange,
    WebhookPause,
    WebhookEnable,
    WebhookRotate,
    WebhookDelete,
    WebhookResend,
    OperatorAdd,
    OperatorDisable,
    OperatorEnable,
    OperatorRemove,
    OperatorResetPassword,
    OperatorRole,
    SessionEnd,
    /// A request refused for the actor's role (the target is the path).
    Forbidden,
}

impl AuditAction {
    pub const ALL: [AuditAction; 23] = [
        AuditAction::SignIn,
        AuditAction::SignInMicrosoft,
        AuditAction::SignOut,
        AuditAction::VerifyNow,
        AuditAction::InvitationCreate,
        AuditAction::InvitationRevoke,
        AuditAction::ApiKeyCreate,
        AuditAction::ApiKeyRevoke,
        AuditAction::WebhookCreate,
        AuditAction::WebhookChange,
        AuditAction::WebhookPause,
        AuditAction::WebhookEnable,
        AuditAction::WebhookRotate,
        AuditAction::WebhookDelete,
        AuditAction::WebhookResend,
        AuditAction::OperatorAdd,
        AuditAction::OperatorDisable,
        AuditAction::OperatorEnable,
        AuditAction::OperatorRemove,
        AuditAction::OperatorResetPassword,
        AuditAction::OperatorRole,
        AuditAction::SessionEnd,
        AuditAction::Forbidden,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::SignIn => "sign_in",
            AuditAction::SignInMicrosoft => "sign_in.microsoft",
            AuditAction::SignOut => "sign_out",
            AuditAction::VerifyNow => "verify_now",
            AuditAction::InvitationCreate => "invitation.create",
            AuditAction::InvitationRevoke => "invitation.revoke",
            AuditAction::ApiKeyCreate => "api_key.create",
            AuditAction::ApiKeyRevoke => "api_key.revoke",
            AuditAction::WebhookCreate => "webhook.create",
            AuditAction::WebhookChange => "webhook.change",
            AuditAction::WebhookPause => "webhook.pause",
            AuditAction::WebhookEnable => "webhook.enable",
            AuditAction::WebhookRotate => "webhook.rotate",
            AuditAction::WebhookDelete => "webhook.delete",
            AuditAction::WebhookResend => "webhook.resend",
            AuditAction::OperatorAdd => "operator.add",
            AuditAction::OperatorDisable => "operator.disable",
            AuditAction::OperatorEnable => "operator.enable",
            AuditAction::OperatorRemove => "operator.remove",
            AuditAction::OperatorResetPassword => "operator.reset_password",
            AuditAction::OperatorRole => "operator.role",
            AuditAction::SessionEnd => "session.end",
            AuditAction::Forbidden => "forbidden",
        }
    }

    pub fn parse(raw: &str) -> Option<AuditAction> {
        AuditAction::ALL.into_iter().find(|a| a.as_str() == raw)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    /// Refused for the actor's role.
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }
}

/// One line of the trail, as written.
pub struct NewAuditEvent<'a> {
    /// The operator's name, or "unknown" (a failed sign-in).
    pub actor: &'a str,
    pub address: &'a str,
    pub action: AuditAction,
    pub target: &'a str,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub address: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
}

/// Which lines to read: all fields optional; `before` is the paging cursor (an id).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    /// Inclusive, as stored timestamps compare (`2026-12-01` is the start of that day).
    pub from: Option<String>,
    /// Exclusive.
    pub until: Option<String>,
    pub before: Option<i64>,
}

/// Longest target kept (a name typed at the sign-in form may be anything).
const MAX_TARGET_CHARS: usize = 200;

impl Store {
    /// Appends one line to the trail.
    pub async fn audit(
        &self,
        event: &NewAuditEvent<'_>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let target: String = event.target.chars().take(MAX_TARGET_CHARS).collect();
        sqlx::query(
            "insert into audit_event (at, actor, address, action, target, outcome) values ($1, $2, $3, $4, $5, $6)",
        )
        .bind(ts(now))
        .bind(event.actor)
        .bind(event.address)
        .bind(event.action.as_str())
        .bind(target)
        .bind(event.outcome.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Up to `limit` lines matching `filter`, newest first.
    pub async fn audit_events(
        &self,
        filter: &AuditFilter,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let mut query = super::Statement::new(
            "select id, at, actor, address, action, target, outcome from audit_event where 1 = 1",
        );
        if let Some(actor) = &filter.actor {
            query.push(" and actor = ").text(actor.clone());
        }
        if let Some(action) = &filter.action {
            query.push(" and action = ").text(action.clone());
        }
        if let Some(from) = &filter.from {
            query.push(" and at >= ").text(from.clone());
        }
        if let Some(until) = &filter.until {
            query.push(" and at < ").text(until.clone());
        }
        if let Some(before) = filter.before {
            query.push(" and id < ").integer(before);
        }
        query.push(" order by id desc limit ").integer(limit);
        Ok(query.query_as().fetch_all(&self.pool).await?)
    }
}
