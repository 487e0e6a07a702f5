//! Invitations: what an operator asks of a named customer, parsed once, and the link's
//! token, derived rather than stored.
//!
//! The fields a sign-up may give (organisation name, contact email, Microsoft domain) are
//! checked by the same rules here, whoever types them.

use time::Duration;

use super::{Keyed, RandomToken, TenantId};

/// How long an invitation lives unless the operator says otherwise.
pub const DEFAULT_LIFETIME_DAYS: i64 = 7;
/// The longest an operator may choose: a link in a mailbox is a live secret.
pub const MAX_LIFETIME_DAYS: i64 = 30;

/// The link's token: HMAC-SHA256 of the invitation's random salt under the session key
/// (as webhook secrets are derived), so the dashboard can show the link again while it
/// lives and the database alone cannot rebuild it.
pub fn invitation_token(keyed: &Keyed, salt: &str) -> RandomToken {
    keyed.derive_token("invitation", salt)
}

/// At most 200 characters, no control characters; `None` when empty.
pub fn parse_organisation_name(raw: &str) -> Result<Option<String>, &'static str> {
    let name = raw.trim();
    if name.is_empty() {
        return Ok(None);
    }
    if name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err("The organisation name must be at most 200 characters.");
    }
    Ok(Some(name.to_owned()))
}

/// Something@somewhere.tld, at most 254 characters, no spaces; `None` when empty.
pub fn parse_contact_email(raw: &str) -> Result<Option<String>, &'static str> {
    let email = raw.trim();
    if email.is_empty() {
        return Ok(None);
    }
    let ok = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(Some(email.to_owned()))
    } else {
        Err("The contact email does not look like an email address.")
    }
}

/// A tenant GUID or a DNS name, lower-cased: safe as the adminconsent URL's path segment.
pub fn parse_tenant_hint(raw: &str) -> Result<Option<String>, &'static str> {
    let hint = raw.trim().to_ascii_lowercase();
    if hint.is_empty() {
        return Ok(None);
    }
    if is_tenant_hint(&hint) {
        Ok(Some(hint))
    } else {
        Err(
            "The tenant domain must look like contoso.onmicrosoft.com or contoso.com, or be a tenant ID.",
        )
    }
}

fn is_tenant_hint(hint: &str) -> bool {
    if TenantId::parse(hint).is_some() {
        return true;
    }
    hint.len() <= 253
        && hint.contains('.')
        && hint.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// Which organisation the invitation is for, when the operator knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvitedTenant {
    /// A tenant id: only a callback naming it can use the invitation.
    Id(TenantId),
    /// A domain: Microsoft goes straight to its organisation, and the invitation counts as
    /// verified once that tenant's verified domains include it.
    Domain(String),
}

impl InvitedTenant {
    /// The adminconsent page's tenant segment.
    pub fn segment(&self) -> String {
        match self {
            InvitedTenant::Id(id) => id.to_string(),
            InvitedTenant::Domain(d) => d.clone(),
        }
    }
}

/// An operator's new invitation, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationRequest {
    pub organisation_name: String,
    pub contact_email: String,
    pub tenant: Option<InvitedTenant>,
    pub lifetime: Duration,
}

impl InvitationRequest {
    /// From the form's fields as typed; `days` empty means the default.
    pub fn parse(
        organisation_name: &str,
        contact_email: &str,
        tenant: &str,
        days: &str,
    ) -> Result<InvitationRequest, &'static str> {
        let organisation_name = parse_organisation_name(organisation_name)?
            .ok_or("Name the organisation you invite.")?;
        let contact_email = parse_contact_email(contact_email)?
            .ok_or("Give the email address the invitation goes to.")?;
        let tenant = parse_tenant_hint(tenant)?.map(|hint| match TenantId::parse(&hint) {
            Some(id) => InvitedTenant::Id(id),
            None => InvitedTenant::Domain(hint),
        });
        let days = match days.trim() {
            "" => DEFAULT_LIFETIME_DAYS,
            raw => raw
                .parse::<i64>()
                .ok()
                .filter(|d| (1..=MAX_LIFETIME_DAYS).contains(d))
                .ok_or("An invitation lives from 1 to 30 days.")?,
        };
        Ok(InvitationRequest {
            organisation_name,
            contact_email,
            tenant,
            lifetime: Duration::days(days),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTOSO: &str = "3f2c8a71-5d94-4e0b-a6c3-1b7e9d2f4a58";

    #[test]
    fn an_invitation_needs_a_name_and_an_email_and_a_sane_lifetime() {
        let ok = InvitationRequest::parse(" Contoso ", "it@contoso.com", "", "").unwrap();
        assert_eq!(ok.organisation_name, "Contoso");
        assert_eq!(ok.lifetime, Duration::days(7));
        assert_eq!(ok.tenant, None);
        let by_id = InvitationRequest::parse("C", "a@b.co", &CONTOSO.to_uppercase(), "30").unwrap();
        assert_eq!(
            by_id.tenant,
            Some(InvitedTenant::Id(TenantId::parse(CONTOSO).unwrap()))
        );
        let by_domain = InvitationRequest::parse("C", "a@b.co", "Contoso.COM", "1").unwrap();
        assert_eq!(
            by_domain.tenant,
            Some(InvitedTenant::Domain("contoso.com".into()))
        );
        for (org, email, tenant, days) in [
            ("", "a@b.co", "", ""),
            ("C", "", "", ""),
            ("C", "not-an-email", "", ""),
            ("C", "a@b.co", "../../evil", ""),
            ("C", "a@b.co", "", "0"),
            ("C", "a@b.co", "", "31"),
            ("C", "a@b.co", "", "seven"),
            ("C\u{7}", "a@b.co", "", ""),
        ] {
            assert!(
                InvitationRequest::parse(org, email, tenant, days).is_err(),
                "{org:?} {email:?} {tenant:?} {days:?}"
            );
        }
    }

    #[test]
    fn the_token_is_derived_from_the_salt_under_the_key() {
        let key = Keyed::new(&[1; 32]);
        let a = invitation_token(&key, "salt-a");
        assert_eq!(a, invitation_token(&key, "salt-a"));
        assert_ne!(a, invitation_token(&key, "salt-b"));
        assert_ne!(a, invitation_token(&Keyed::new(&[2; 32]), "salt-a"));
        assert!(
            RandomToken::parse(a.expose()).is_some(),
            "a token like ours"
        );
    }
}
