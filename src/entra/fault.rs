//! What an AADSTS code means for the tenant (ENTRA.md §4).

/// Who is at fault, and so what to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// No service principal in the tenant: never consented, revoked, or consent still
    /// propagating (700016, 65001, 7000229). Retry for a while after a callback.
    ConsentMissing,
    /// The tenant was deleted, mistyped or blocked (90002, 5000225).
    TenantGone,
    /// The app's own credential is broken (7000215, 7000222, 700027, 7000218, 7000112):
    /// every tenant is affected; no tenant is to blame.
    AppCredential,
    /// A tenant policy refuses the app (53003, Conditional Access).
    TenantPolicy,
    /// The request is wrong (70011, 700022, 500011, 900144, ...): a configuration bug.
    AppConfiguration,
    /// Worth retrying soon (50196 loop detected, 50033, 90006, 90024, 90033, 5xx, timeouts).
    Transient,
}

impl Fault {
    pub fn classify(codes: &[u32], error: &str) -> Fault {
        for code in codes {
            let fault = match code {
                700016 | 65001 | 7000229 => Fault::ConsentMissing,
                90002 | 5000225 | 900023 => Fault::TenantGone,
                // Secret wrong or expired, assertion unverifiable, expired, for another app or
                // audience, malformed, or no matching federated credential: all the app's own.
                7000215 | 7000222 | 700027 | 7000218 | 7000112 | 700025 | 700024 | 700021
                | 700023 | 50048 | 50027 | 70021 | 5002730 => Fault::AppCredential,
                53003 => Fault::TenantPolicy,
                70011 | 700022 | 500011 | 900144 | 70003 | 9000411 | 50059 | 700038 => {
                    Fault::AppConfiguration
                }
                50196 | 50033 | 90006 | 90024 | 90033 => Fault::Transient,
                _ => continue,
            };
            return fault;
        }
        match error {
            "invalid_client" => Fault::AppCredential,
            "unauthorized_client" => Fault::ConsentMissing,
            "temporarily_unavailable" | "server_error" => Fault::Transient,
            _ => Fault::AppConfiguration,
        }
    }

    /// What operators should do about it.
    pub fn advice(self) -> &'static str {
        match self {
            Fault::ConsentMissing => {
                "The app has no service principal in this tenant: the administrator did not finish consent, revoked it, or Microsoft is still propagating it. Send them the consent link again."
            }
            Fault::TenantGone => {
                "Microsoft does not know this tenant (deleted, blocked or mistyped)."
            }
            Fault::AppCredential => {
                "Microsoft rejected consentry's own credential (client secret or certificate). This affects every tenant: fix CONSENTRY_CLIENT_SECRET or the app registration's credentials."
            }
            Fault::TenantPolicy => {
                "A policy in the customer's tenant (e.g. Conditional Access) blocks the app."
            }
            Fault::AppConfiguration => {
                "consentry's request was refused as malformed: check its configuration (scope, client id, hosts)."
            }
            Fault::Transient => "Microsoft had a transient problem; consentry retries.",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_code_then_by_error() {
        assert_eq!(
            Fault::classify(&[700016], "unauthorized_client"),
            Fault::ConsentMissing
        );
        assert_eq!(
            Fault::classify(&[7000215], "invalid_client"),
            Fault::AppCredential
        );
        assert_eq!(
            Fault::classify(&[90002], "invalid_request"),
            Fault::TenantGone
        );
        assert_eq!(
            Fault::classify(&[12345], "invalid_client"),
            Fault::AppCredential
        );
        assert_eq!(
            Fault::classify(&[], "temporarily_unavailable"),
            Fault::Transient
        );
        assert_eq!(
            Fault::classify(&[70011], "invalid_scope"),
            Fault::AppConfiguration
        );
    }
}
