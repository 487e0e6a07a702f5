//! What an AADSTS code means for the tenant (ENTRA.md §4).

/// Who is at fault, and so what to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// No service principal in the tenant: never consented, revoked, or consent still
    /// propagating (700016, 65001, 7000229). Retry for a while after a callback.
    ConsentMissing,
    /// The tenant was deleted, mistyped or blocked (90002, 5000225).
    TenantGone,
    /// The app's own credential is broken (7000215, 7000222, 700027, 7000218, ...):
    /// every tenant is affected; no tenant is to blame. Only this evidence (and a
    /// configuration bug's codes) raises the app-wide alert.
    AppCredential,
    /// The customer's tenant refuses the app: Conditional Access (53003), or the app
    /// disabled in that tenant (7000112). The tenant's choice, not our credential.
    TenantPolicy,
    /// The request is wrong (70011, 700022, 500011, 900144, ...): a configuration bug.
    AppConfiguration,
    /// Worth retrying soon (50196 loop detected, 50033, 90006, 90024, 90033, 5xx, timeouts).
    Transient,
    /// A code this table does not know. Not evidence against the app's credential (so no
    /// app-wide alert): it counts against the tenant, under the verification deadline.
    Unclassified,
}

impl Fault {
    pub fn classify(codes: &[u32], error: &str) -> Fault {
        for code in codes {
            let fault = match code {
                700016 | 65001 | 7000229 => Fault::ConsentMissing,
                90002 | 5000225 | 900023 => Fault::TenantGone,
                // Secret wrong or expired, assertion unverifiable, expired, for another app or
                // audience, malformed, or no matching federated credential: all the app's own.
                7000215 | 7000222 | 700027 | 7000218 | 700025 | 700024 | 700021 | 700023
                | 50048 | 50027 | 70021 | 5002730 => Fault::AppCredential,
                // 7000112: the application is disabled in this tenant (its administrator
                // disabled the enterprise app): one customer's choice, not our credential.
                53003 | 7000112 => Fault::TenantPolicy,
                70011 | 700022 | 500011 | 900144 | 70003 | 9000411 | 50059 | 700038 => {
                    Fault::AppConfiguration
                }
                50196 | 50033 | 90006 | 90024 | 90033 => Fault::Transient,
                _ => continue,
            };
            return fault;
        }
        match error {
            "temporarily_unavailable" | "server_error" => Fault::Transient,
            // Without any code, the OAuth error is all there is (RFC 6749 §5.2); with codes
            // none of which is known, `invalid_client` alone is no proof that our secret
            // is bad (Microsoft sends it for tenant-side refusals too).
            "invalid_client" if codes.is_empty() => Fault::AppCredential,
            "unauthorized_client" if codes.is_empty() => Fault::ConsentMissing,
            _ => Fault::Unclassified,
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
                "The customer's tenant refuses the app: a policy (e.g. Conditional Access) blocks it, or its administrator disabled the app there."
            }
            Fault::AppConfiguration => {
                "consentry's request was refused as malformed: check its configuration (scope, client id, hosts)."
            }
            Fault::Transient => "Microsoft had a transient problem; consentry retries.",
            Fault::Unclassified => {
                "Microsoft refused with a code consentry does not know; it counts against this tenant only."
            }
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
            Fault::Unclassified,
            "an unknown code is no evidence against the app's credential"
        );
        assert_eq!(Fault::classify(&[], "invalid_client"), Fault::AppCredential);
        assert_eq!(
            Fault::classify(&[7000112], "unauthorized_client"),
            Fault::TenantPolicy,
            "the app disabled in one tenant is that tenant's choice"
        );
        assert_eq!(Fault::classify(&[], "invalid_grant"), Fault::Unclassified);
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
