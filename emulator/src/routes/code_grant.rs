//! `POST /{tenant}/oauth2/v2.0/token` for a signed-in person: the authorization-code grant
//! (RFC 6749 §4.1.3, with PKCE, RFC 7636 §4.6) and the refresh-token grant (§6).
//!
//! The client authenticates as for client credentials (secret or assertion), before its code
//! is looked at. A code is single-use and burnt by its first redemption, failed or not, so
//! a stolen code cannot be tried against many verifiers.

use actix_web::HttpRequest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::OffsetDateTime;
use uuid::Uuid;

use super::token::{authenticate, is_token_endpoint_of};
use super::{base_url, sts_param_error};
use crate::EmulatorState;
use crate::claims::ClientAuthentication;
use crate::directory::{AppRegistration, Directory, Tenant, TenantRef};
use crate::errors::StsError;
use crate::params::Params;
use crate::signin::{CODE_LIFETIME, REFRESH_LIFETIME, Refresh};
use crate::signing::TokenKind;
use crate::user_claims::{DelegatedAccessTokenClaims, IdTokenClaims};
use crate::users::{Account, role_values};

/// The endpoint's tenant: a known one, or `organizations`/`common`.
enum Endpoint<'a> {
    Tenant(&'a Tenant),
    Alias,
}

pub(super) fn issue(
    state: &EmulatorState,
    dir: &Directory,
    req: &HttpRequest,
    segment: &str,
    params: &Params,
    now: OffsetDateTime,
) -> Result<serde_json::Value, StsError> {
    let text = |name: &str| params.text(name).map_err(sts_param_error);
    let endpoint = match TenantRef::parse(segment) {
        None => return Err(StsError::invalid_tenant(segment)),
        Some(TenantRef::Organizations | TenantRef::Common) => Endpoint::Alias,
        Some(TenantRef::Consumers) => return Err(StsError::tenant_not_found(segment)),
        Some(r) => Endpoint::Tenant(
            dir.resolve(&r)
                .ok_or_else(|| StsError::tenant_not_found(segment))?,
        ),
    };
    let directory_name = match &endpoint {
        Endpoint::Tenant(t) => t.display_name.as_str(),
        Endpoint::Alias => "the tenant",
    };
    let client_id = text("client_id")?.ok_or_else(|| StsError::missing_parameter("client_id"))?;
    let client = Uuid::try_parse(client_id).map_err(|_| StsError::invalid_client_id(client_id))?;
    let app = dir
        .app(client)
        .ok_or_else(|| StsError::app_not_found(client_id, directory_name))?;
    let grant_type = text("grant_type")?.unwrap_or_default();
    // Read before authentication so that a missing field is named first, as Microsoft does.
    let grant = match grant_type {
        "authorization_code" => text("code")?.ok_or_else(|| StsError::missing_parameter("code"))?,
        _ => text("refresh_token")?.ok_or_else(|| StsError::missing_parameter("refresh_token"))?,
    };
    let base = base_url(req);
    let lower = segment.to_ascii_lowercase();
    let accepts = |named: &str| match &endpoint {
        Endpoint::Tenant(t) => dir.tenant_id(named) == Some(t.id),
        Endpoint::Alias => named.eq_ignore_ascii_case(&lower),
    };
    let is_token_endpoint = |aud: &str| is_token_endpoint_of(aud, &base, &accepts);
    let authentication = authenticate(app, params, client_id, &is_token_endpoint, now)?;

    let redeemed = if grant_type == "authorization_code" {
        let redirect_uri =
            text("redirect_uri")?.ok_or_else(|| StsError::missing_parameter("redirect_uri"))?;
        let code = state
            .sign_ins
            .redeem(grant)
            .ok_or_else(StsError::invalid_grant_format)?;
        if code.redeemed {
            return Err(StsError::code_redeemed());
        }
        if now - code.issued_at > CODE_LIFETIME {
            return Err(StsError::grant_expired());
        }
        if code.client_id != client {
            return Err(StsError::grant_of_other_client());
        }
        let code_alias = matches!(
            TenantRef::parse(&code.segment),
            Some(TenantRef::Organizations | TenantRef::Common)
        );
        let same_tenant = match &endpoint {
            Endpoint::Tenant(t) => !code_alias && t.id == code.tenant,
            Endpoint::Alias => code_alias,
        };
        if !same_tenant {
            return Err(StsError::code_of_other_tenant());
        }
        if code.redirect_uri != redirect_uri {
            return Err(StsError::reply_address_mismatch(
                redirect_uri,
                &code.redirect_uri,
            ));
        }
        let verifier = text("code_verifier")?;
        match (&code.challenge, verifier) {
            (None, None) => {}
            (Some(_), None) => return Err(StsError::verifier_missing()),
            (None, Some(_)) => return Err(StsError::verifier_mismatch()),
            (Some(challenge), Some(v)) if !challenge.matches(v) => {
                return Err(StsError::verifier_mismatch());
            }
            (Some(_), Some(_)) => {}
        }
        Redeemed {
            tenant: code.tenant,
            user: code.user,
            scopes: code.scopes,
            nonce: code.nonce,
            code: Some(grant),
        }
    } else {
        let refresh = state
            .sign_ins
            .refresh(grant)
            .ok_or_else(StsError::invalid_grant_format)?;
        if refresh.client_id != client {
            return Err(StsError::grant_of_other_client());
        }
        if now - refresh.issued_at > REFRESH_LIFETIME {
            return Err(StsError::refresh_expired(
                refresh.issued_at,
                (now - refresh.issued_at).whole_days(),
            ));
        }
        if let Endpoint::Tenant(t) = &endpoint
            && t.id != refresh.tenant
        {
            return Err(StsError::code_of_other_tenant());
        }
        // A narrower (or other) set of scopes may be asked for; consent decides below.
        let scopes = match text("scope")? {
            None => refresh.scopes,
            Some(scope) => {
                let mut asked: Vec<String> = Vec::new();
                for s in scope.split(' ').filter(|s| !s.is_empty()) {
                    let name = s.rsplit('/').next().unwrap_or(s);
                    let name = if ["openid", "profile", "email", "offline_access"]
                        .contains(&name.to_ascii_lowercase().as_str())
                    {
                        name.to_ascii_lowercase()
                    } else {
                        name.to_owned()
                    };
                    if !asked.iter().any(|a| a.eq_ignore_ascii_case(&name)) {
                        asked.push(name);
                    }
                }
                asked
            }
        };
        Redeemed {
            tenant: refresh.tenant,
            user: refresh.user,
            scopes,
            nonce: None,
            code: None,
        }
    };

    let accounts = state.accounts();
    let (Some(tenant), Some(user)) = (dir.tenant(redeemed.tenant), accounts.user(redeemed.user))
    else {
        return Err(StsError::grant_revoked());
    };
    if user.tenant != tenant.id {
        return Err(StsError::grant_revoked());
    }
    if !accounts
        .missing(tenant, app.client_id, user, &redeemed.scopes)
        .is_empty()
    {
        return Err(StsError::consent_revoked(app.client_id, &app.display_name));
    }
    let roles = role_values(user, app);
    let user = user.clone();
    drop(accounts);
    tokens(
        state,
        app,
        req,
        params,
        tenant,
        &user,
        roles,
        redeemed,
        authentication,
        now,
    )
}

/// What a code or refresh token stood for.
struct Redeemed<'a> {
    tenant: Uuid,
    user: Uuid,
    scopes: Vec<String>,
    nonce: Option<String>,
    /// The code redeemed, when it was one: its refresh token is revoked on a replay.
    code: Option<&'a str>,
}

/// The answer: a delegated access token for Graph, an ID token with `openid`, a refresh
/// token with `offline_access`, and `client_info` when asked for (MSAL asks).
#[allow(clippy::too_many_arguments)]
fn tokens(
    state: &EmulatorState,
    app: &AppRegistration,
    req: &HttpRequest,
    params: &Params,
    tenant: &Tenant,
    user: &Account,
    roles: Vec<String>,
    redeemed: Redeemed<'_>,
    authentication: ClientAuthentication,
    now: OffsetDateTime,
) -> Result<serde_json::Value, StsError> {
    let lifetime = state.token_lifetime_secs;
    let has = |s: &str| redeemed.scopes.iter().any(|x| x == s);
    let appidacr = match authentication {
        ClientAuthentication::Secret => "1",
        ClientAuthentication::Assertion => "2",
    };
    let sign_failed = |_| StsError::malformed("The token could not be signed.");
    let access = DelegatedAccessTokenClaims::new(
        app,
        tenant,
        user,
        &redeemed.scopes,
        appidacr,
        now,
        lifetime,
    );
    let graph_scopes: Vec<String> = redeemed
        .scopes
        .iter()
        .filter(|s| !["openid", "profile", "email", "offline_access"].contains(&s.as_str()))
        .map(|s| format!("https://graph.microsoft.com/{s}"))
        .collect();
    let oidc_scopes: Vec<&str> = ["openid", "profile", "email"]
        .into_iter()
        .filter(|s| has(s))
        .collect();
    let scope = oidc_scopes
        .iter()
        .map(|s| (*s).to_owned())
        .chain(graph_scopes)
        .collect::<Vec<_>>()
        .join(" ");
    let mut body = serde_json::json!({
        "token_type": "Bearer",
        "scope": scope,
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": state
            .signer
            .sign(TokenKind::DelegatedAccessToken, &access).map_err(sign_failed)?,
    });
    if has("openid") {
        let issuer = format!("{}/{}/v2.0", base_url(req), tenant.id);
        let id = IdTokenClaims::new(
            issuer,
            app,
            tenant,
            user,
            roles,
            &redeemed.scopes,
            redeemed.nonce,
            now,
            lifetime,
        );
        body["id_token"] = state
            .signer
            .sign(TokenKind::IdToken, &id)
            .map_err(sign_failed)?
            .into();
    }
    if has("offline_access") {
        // Microsoft answers every refresh with a new refresh token; the one used stays
        // valid until it expires, as there.
        let refresh = state.sign_ins.issue_refresh(
            Refresh {
                client_id: app.client_id,
                tenant: tenant.id,
                user: user.id,
                scopes: redeemed.scopes.clone(),
                issued_at: now,
            },
            redeemed.code,
            now,
        );
        body["refresh_token"] = refresh.into();
    }
    if matches!(params.text("client_info"), Ok(Some("1"))) {
        let info = serde_json::json!({"uid": user.id, "utid": tenant.id}).to_string();
        body["client_info"] = URL_SAFE_NO_PAD.encode(info).into();
    }
    Ok(body)
}
