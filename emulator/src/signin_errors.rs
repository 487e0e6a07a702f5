//! The identity platform's errors for sign-in: the authorize endpoint's, and the token
//! endpoint's for the authorization-code and refresh-token grants. Codes and texts are
//! Microsoft's (learn.microsoft.com, "Microsoft Entra authentication and authorization error
//! codes", and the responses quoted in MSAL's and its users' issues).

use time::OffsetDateTime;
use uuid::Uuid;

use super::errors::{OAuthError, StsError};

impl StsError {
    /// The sign-in or consent form is unknown, expired, already used, or was posted from
    /// another browser than the one that opened it.
    pub fn flow_expired() -> StsError {
        Self::new(
            OAuthError::InvalidRequest,
            50089,
            "Authentication failed due to flow token expired. Sign in again from the application.",
        )
    }

    pub fn no_reply_address() -> StsError {
        Self::new(
            OAuthError::InvalidRequest,
            900971,
            "No reply address provided.",
        )
    }

    /// `response_type` other than `code`: the implicit grant is not enabled for the app.
    pub fn response_type_not_enabled(response_type: &str) -> StsError {
        let (code, message) = if response_type.split(' ').any(|t| t == "id_token") {
            (
                700054,
                "response_type 'id_token' is not enabled for the application.".to_owned(),
            )
        } else if response_type.split(' ').any(|t| t == "token") {
            (
                700051,
                "response_type 'token' is not enabled for the application.".to_owned(),
            )
        } else {
            (
                70005,
                format!("The response type '{response_type}' is not supported."),
            )
        };
        Self::new(OAuthError::UnsupportedResponseType, code, message)
    }

    pub fn unsupported_response_mode(mode: &str) -> StsError {
        Self::new(
            OAuthError::InvalidRequest,
            70007,
            format!("The application returned an unsupported value of 'response_mode': '{mode}'."),
        )
    }

    pub fn invalid_challenge_method() -> StsError {
        Self::new(
            OAuthError::InvalidRequest,
            50149,
            "Invalid Code_Challenge_method parameter.",
        )
    }

    /// RFC 7636 §4.2: 43 to 128 characters.
    pub fn invalid_challenge_size() -> StsError {
        Self::new(
            OAuthError::InvalidRequest,
            501491,
            "Invalid size of Code_Challenge parameter.",
        )
    }

    pub fn invalid_prompt(prompt: &str) -> StsError {
        Self::new(
            OAuthError::InvalidRequest,
            90023,
            format!(
                "Invalid request. The value '{prompt}' of the parameter 'prompt' is not supported."
            ),
        )
    }

    /// `prompt=none` and the browser has no session (for this tenant, or this hint).
    pub fn login_required() -> StsError {
        Self::new(
            OAuthError::LoginRequired,
            50058,
            "A silent sign-in request was sent but no user is signed in.",
        )
    }

    /// `prompt=none` and a consent is missing.
    pub fn consent_required(client_id: Uuid, app_name: &str) -> StsError {
        Self::new(
            OAuthError::InteractionRequired,
            65001,
            format!(
                "The user or administrator has not consented to use the application with ID '{client_id}' named '{app_name}'. Send an interactive authorization request for this user and resource."
            ),
        )
    }

    /// A refresh token whose consent was revoked since.
    pub fn consent_revoked(client_id: Uuid, app_name: &str) -> StsError {
        let mut e = Self::consent_required(client_id, app_name);
        e.error = OAuthError::InvalidGrant;
        e
    }

    /// A person who is not an administrator, asking for permissions the tenant's policy
    /// lets only an administrator grant ("Need admin approval").
    pub fn admin_approval_required(tenant: &str, app_name: &str) -> StsError {
        Self::new(
            OAuthError::AccessDenied,
            90094,
            format!(
                "An administrator of {tenant} has set a policy that prevents you from granting {app_name} the permissions it is requesting. Contact an administrator of {tenant}, who can grant permissions to this app on your behalf."
            ),
        )
    }

    /// The person pressed Cancel on the consent page.
    pub fn user_declined() -> StsError {
        let mut e = Self::declined();
        e.error = OAuthError::AccessDenied;
        e
    }

    pub fn user_not_found(name: &str, directory: &str) -> StsError {
        Self::new(
            OAuthError::InvalidRequest,
            50034,
            format!(
                "The user account {name} does not exist in the {directory} directory. To sign into this application, the account must be added to the directory."
            ),
        )
    }

    pub fn code_redeemed() -> StsError {
        Self::new(
            OAuthError::InvalidGrant,
            54005,
            "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
        )
    }

    pub fn grant_expired() -> StsError {
        Self::new(
            OAuthError::InvalidGrant,
            70008,
            "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
        )
    }

    /// A code or refresh token the emulator never issued (or no longer knows).
    pub fn invalid_grant_format() -> StsError {
        Self::new(
            OAuthError::InvalidGrant,
            9002313,
            "Invalid request. Request is malformed or invalid.",
        )
    }

    /// A code or refresh token issued to another application.
    pub fn grant_of_other_client() -> StsError {
        Self::new(
            OAuthError::InvalidGrant,
            70000,
            "Provided grant is invalid or malformed.",
        )
    }

    pub fn code_of_other_tenant() -> StsError {
        Self::new(
            OAuthError::InvalidGrant,
            700005,
            "Provided Authorization Code is intended to use against other tenant, thus rejected.",
        )
    }

    pub fn reply_address_mismatch(given: &str, expected: &str) -> StsError {
        Self::new(
            OAuthError::InvalidGrant,
            50011,
            format!(
                "The reply address '{given}' does not match the reply address '{expected}' provided when requesting Authorization code."
            ),
        )
    }

    /// A code asked for with a `code_challenge`, redeemed without a `code_verifier`.
    pub fn verifier_missing() -> StsError {
        Self::new(
            OAuthError::InvalidGrant,
            50148,
            "The code_verifier does not match the code_challenge supplied in the authorization request for PKCE.",
        )
    }

    pub fn verifier_mismatch() -> StsError {
        Self::new(
            OAuthError::InvalidGrant,
            501481,
            "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
        )
    }

    pub fn refresh_expired(issued: OffsetDateTime, inactive_days: i64) -> StsError {
        Self::new(
            OAuthError::InvalidGrant,
            700082,
            format!(
                "The refresh token has expired due to inactivity. The token was issued on {} and was inactive for {inactive_days}.00:00:00.",
                crate::clock::rfc3339_seconds(issued)
            ),
        )
    }

    /// The user the grant was for no longer exists.
    pub fn grant_revoked() -> StsError {
        Self::new(
            OAuthError::InvalidGrant,
            50173,
            "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.",
        )
    }
}
