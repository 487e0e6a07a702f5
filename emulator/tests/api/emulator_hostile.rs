//! Negative-testing tools: signing-key rotation, hostile token modes, the throttle that
//! catches early retries, and the request audit.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{FABRIKAM, TestEmulator, claims, spawn_emulator};

/// The JWT's header, decoded.
fn header(jwt: &str) -> Value {
    let part = jwt.split('.').next().expect("a header");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}

/// The published keys, as a client fetches them.
async fn jwks(emulator: &TestEmulator) -> Vec<Value> {
    let response = emulator
        .http
        .get(emulator.url(&format!("/{}/discovery/v2.0/keys", emulator.contoso())))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["keys"].as_array().unwrap().clone()
}

fn kids(keys: &[Value]) -> Vec<String> {
    keys.iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// Whether `jwt` carries a valid RS256 signature by `jwk`, checked with ring as a client's
/// JWT library would.
fn signed_by(jwt: &str, jwk: &Value) -> bool {
    let (signed, signature) = jwt.rsplit_once('.').unwrap();
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    let e = URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap();
    let Ok(signature) = URL_SAFE_NO_PAD.decode(signature) else {
        return false;
    };
    ring::signature::RsaPublicKeyComponents { n: &n, e: &e }
        .verify(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            signed.as_bytes(),
            &signature,
        )
        .is_ok()
}

/// Validates `jwt` against the JWKS by its `kid`: `Some(true)` when a published key signed
/// it, `Some(false)` when the key is published but the signature is wrong, `None` when no
/// published key has that `kid`.
fn validate(jwt: &str, keys: &[Value]) -> Option<bool> {
    let kid = header(jwt)["kid"].as_str()?.to_owned();
    let jwk = keys.iter().find(|k| k["kid"] == kid.as_str())?;
    Some(header(jwt)["alg"] == "RS256" && signed_by(jwt, jwk))
}

/// The emulator's "now", in seconds.
async fn emulator_now(emulator: &TestEmulator) -> i64 {
    let (_, clock) = emulator.control(Method::GET, "/clock", None).await;
    time::OffsetDateTime::parse(
        clock["now"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .unix_timestamp()
}

async fn hostile(emulator: &TestEmulator, body: Value) -> (u16, Value) {
    emulator.control(Method::POST, "/hostile", Some(body)).await
}

async fn graph_status(emulator: &TestEmulator, token: &str) -> u16 {
    emulator
        .graph("/v1.0/organization", Some(token))
        .await
        .status()
        .as_u16()
}

#[tokio::test]
async fn rotation_keeps_the_old_key_published_until_its_tokens_expire() {
    let emulator = spawn_emulator().await;
    let before = emulator.contoso_token().await;
    let old_kid = header(&before)["kid"].as_str().unwrap().to_owned();

    let (status, keys) = emulator.control(Method::POST, "/keys/rotate", None).await;

    assert_eq!(status, 201, "{keys}");
    let new_kid = keys["current"]["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);
    assert_eq!(keys["retired"][0]["kid"], old_kid.as_str());
    let after = emulator.access_token(&emulator.contoso()).await;
    assert_eq!(header(&after)["kid"], new_kid.as_str(), "the new key signs");
    let published = jwks(&emulator).await;
    assert_eq!(kids(&published), [new_kid.clone(), old_kid.clone()]);
    for key in &published {
        // Microsoft's shape: kid = x5t = base64url SHA-1 of the x5c certificate.
        let der = STANDARD.decode(key["x5c"][0].as_str().unwrap()).unwrap();
        let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &der);
        assert_eq!(key["x5t"], key["kid"]);
        assert_eq!(key["kid"], URL_SAFE_NO_PAD.encode(sha1).as_str());
        assert_eq!(
            (key["kty"].as_str(), key["use"].as_str()),
            (Some("RSA"), Some("sig"))
        );
    }
    assert_eq!(
        validate(&before, &published),
        Some(true),
        "old tokens still validate"
    );
    assert_eq!(validate(&after, &published), Some(true));
    assert_eq!(graph_status(&emulator, &before).await, 200);
    assert_eq!(graph_status(&emulator, &after).await, 200);

    // Until the old token has expired (plus the five minutes of skew validators allow).
    emulator.advance_clock(3599 + 300 - 60).await;
    assert_eq!(
        kids(&jwks(&emulator).await),
        [new_kid.clone(), old_kid.clone()]
    );
    emulator.advance_clock(120).await;
    let published = jwks(&emulator).await;
    assert_eq!(kids(&published), [new_kid], "the retired key left");
    assert_eq!(validate(&before, &published), None);
    let fresh = emulator.access_token(&emulator.contoso()).await;
    assert_eq!(validate(&fresh, &published), Some(true));
    let (_, keys) = emulator.control(Method::GET, "/keys", None).await;
    assert_eq!(keys["retired"], json!([]));
}

#[tokio::test]
async fn each_hostile_mode_makes_the_next_token_wrong_in_its_stated_way_only() {
    let emulator = spawn_emulator().await;
    let contoso = emulator.contoso();
    emulator.consent(&contoso).await;
    let right_issuer = format!("https://sts.windows.net/{contoso}/");
    let modes = [
        "wrong_issuer",
        "wrong_audience",
        "wrong_tenant",
        "expired",
        "not_yet_valid",
        "unknown_kid",
        "bad_signature",
        "alg_none",
    ];
    for mode in modes {
        let (status, body) = hostile(
            &emulator,
            json!({"mode": mode, "tokens": ["app_access_token"]}),
        )
        .await;
        assert_eq!(status, 200, "{mode}: {body}");
        assert_eq!(body["tokens"]["remaining"], 1);

        let token = emulator.access_token(&contoso).await;
        let normal = emulator.access_token(&contoso).await;

        let keys = jwks(&emulator).await;
        let c = claims(&token);
        let now = emulator_now(&emulator).await;
        let (iat, nbf, exp) = (
            c["iat"].as_i64().unwrap(),
            c["nbf"].as_i64().unwrap(),
            c["exp"].as_i64().unwrap(),
        );
        let signed = validate(&token, &keys);
        match mode {
            "wrong_issuer" => {
                assert_ne!(c["iss"], right_issuer.as_str());
                assert!(
                    c["iss"]
                        .as_str()
                        .unwrap()
                        .starts_with("https://sts.windows.net/")
                );
                assert_eq!(c["tid"], contoso.as_str());
                assert_eq!(signed, Some(true));
            }
            "wrong_audience" => {
                assert_ne!(c["aud"], "https://graph.microsoft.com");
                assert_eq!(c["iss"], right_issuer.as_str());
                assert_eq!(signed, Some(true));
                assert_eq!(graph_status(&emulator, &token).await, 401);
            }
            "wrong_tenant" => {
                assert_ne!(c["tid"], contoso.as_str());
                assert_eq!(c["iss"], right_issuer.as_str(), "iss and tid disagree");
                assert_eq!(signed, Some(true));
            }
            "expired" => {
                assert!(exp < now - 300, "{exp} vs {now}");
                assert!(iat <= nbf && nbf < exp);
                assert_eq!(signed, Some(true));
                assert_eq!(graph_status(&emulator, &token).await, 401);
            }
            "not_yet_valid" => {
                assert!(nbf > now + 300, "{nbf} vs {now}");
                assert!(exp > nbf);
                assert_eq!(signed, Some(true));
                assert_eq!(graph_status(&emulator, &token).await, 401);
            }
            "unknown_kid" => {
                assert_eq!(signed, None, "no published key has that kid");
                let current = &keys[0];
                assert!(signed_by(&token, current), "signed by the current key");
                assert_eq!(graph_status(&emulator, &token).await, 401);
            }
            "bad_signature" => {
                assert_eq!(header(&token), header(&normal));
                assert_eq!(signed, Some(false));
                assert_eq!(graph_status(&emulator, &token).await, 401);
            }
            "alg_none" => {
                assert_eq!(header(&token), json!({"typ": "JWT", "alg": "none"}));
                assert!(token.ends_with('.'), "an empty signature");
                assert_eq!(c["tid"], contoso.as_str());
                assert_eq!(graph_status(&emulator, &token).await, 401);
            }
            _ => unreachable!(),
        }
        // Only the one token was wrong.
        assert_eq!(validate(&normal, &keys), Some(true), "{mode}");
        let n = claims(&normal);
        assert_eq!(
            (n["iss"].as_str(), n["tid"].as_str(), n["aud"].as_str()),
            (
                Some(right_issuer.as_str()),
                Some(contoso.as_str()),
                Some("https://graph.microsoft.com")
            ),
            "{mode}"
        );
        assert!(n["exp"].as_i64().unwrap() > now && n["nbf"].as_i64().unwrap() <= now);
        let (_, view) = emulator.control(Method::GET, "/hostile", None).await;
        assert_eq!(view["tokens"]["forged"], 1, "{mode}: {view}");
        assert_eq!(view["tokens"]["remaining"], 0, "{mode}: {view}");
    }
}

#[tokio::test]
async fn hostile_modes_touch_only_the_kinds_and_the_count_asked() {
    let emulator = spawn_emulator().await;
    let contoso = emulator.contoso();
    emulator.consent(&contoso).await;

    hostile(
        &emulator,
        json!({"mode": "expired", "tokens": ["id_token"], "count": 3}),
    )
    .await;
    let token = emulator.access_token(&contoso).await;
    assert_eq!(
        graph_status(&emulator, &token).await,
        200,
        "app tokens untouched"
    );

    let (status, _) = hostile(&emulator, json!({"mode": "wrong_tenant", "count": 2})).await;
    assert_eq!(status, 200);
    let tids: Vec<Value> = {
        let mut tids = Vec::new();
        for _ in 0..3 {
            tids.push(claims(&emulator.access_token(&contoso).await)["tid"].clone());
        }
        tids
    };
    assert_ne!(tids[0], contoso.as_str());
    assert_ne!(tids[1], contoso.as_str());
    assert_eq!(tids[2], contoso.as_str());

    hostile(&emulator, json!({"mode": "alg_none", "count": 5})).await;
    let (status, _) = emulator.control(Method::DELETE, "/hostile", None).await;
    assert_eq!(status, 204);
    let token = emulator.access_token(&contoso).await;
    assert_eq!(header(&token)["alg"], "RS256", "cleared");
}

#[tokio::test]
async fn bad_hostile_requests_are_400_and_change_nothing() {
    let emulator = spawn_emulator().await;
    for body in [
        json!({"mode": "evil"}),
        json!({"mode": "expired", "count": 0}),
        json!({"mode": "expired", "count": 1_000_001}),
        json!({"mode": "expired", "tokens": []}),
        json!({"mode": "expired", "tokens": ["refresh_token"]}),
        json!({"mode": "expired", "retry_after_seconds": 5}),
        json!({"mode": "throttle", "tokens": ["id_token"]}),
        json!({"mode": "throttle", "retry_after_seconds": 0}),
        json!({"mode": "throttle", "endpoints": []}),
        json!({"mode": "throttle", "surprise": true}),
        json!([]),
    ] {
        let (status, answer) = hostile(&emulator, body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    let (_, view) = emulator.control(Method::GET, "/hostile", None).await;
    assert_eq!(view, json!({"tokens": null, "throttle": null}));
}

#[tokio::test]
async fn retrying_before_retry_after_is_throttled_again_and_counted_as_a_violation() {
    let emulator = spawn_emulator().await;
    let contoso = emulator.contoso();
    emulator.consent(&contoso).await;
    emulator.consent(FABRIKAM).await;
    let (status, body) = hostile(
        &emulator,
        json!({"mode": "throttle", "retry_after_seconds": 30, "endpoints": ["token"]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let first = emulator.token_v2(&contoso, &[]).await;
    assert_eq!(first.status(), 429);
    assert_eq!(first.headers()["retry-after"], "30");
    let body: Value = first.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert_eq!(body["error_codes"], json!([90033]));

    // The client comes back at once: throttled again, with what is left of the wait.
    emulator.advance_clock(10).await;
    let early = emulator.token_v2(&contoso, &[]).await;
    assert_eq!(early.status(), 429);
    let left: u64 = early.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&left), "{left}");
    // Another tenant's client is not the one being throttled (count 1 was used).
    assert_eq!(emulator.token_v2(FABRIKAM, &[]).await.status(), 200);

    let counts = emulator.requests().await;
    assert_eq!(counts["faults"]["token_v2"]["throttled"], 1, "{counts}");
    assert_eq!(counts["faults"]["token_v2"]["violations"], 1, "{counts}");
    assert_eq!(
        counts["tenant_faults"][contoso.as_str()]["token_v2"]["violations"],
        1
    );
    let (_, view) = emulator.control(Method::GET, "/hostile", None).await;
    assert_eq!(view["throttle"]["violations"], 1, "{view}");
    assert_eq!(
        view["throttle"]["watched"][0]["client_id"],
        emulator.client_id.as_str()
    );

    // Once Retry-After has passed, the retry is served.
    emulator.advance_clock(left).await;
    assert_eq!(emulator.token_v2(&contoso, &[]).await.status(), 200);
    let counts = emulator.requests().await;
    assert_eq!(counts["faults"]["token_v2"]["violations"], 1);
}

#[tokio::test]
async fn graph_throttling_watches_each_app_and_tenant() {
    let emulator = spawn_emulator().await;
    let contoso = emulator.contoso();
    let token = emulator.contoso_token().await;
    emulator.consent(FABRIKAM).await;
    let other = emulator.access_token(FABRIKAM).await;
    hostile(
        &emulator,
        json!({"mode": "throttle", "retry_after_seconds": 5, "endpoints": ["graph"]}),
    )
    .await;

    let throttled = emulator.graph("/v1.0/organization", Some(&token)).await;
    assert_eq!(throttled.status(), 429);
    assert_eq!(throttled.headers()["retry-after"], "5");
    let body: Value = throttled.json().await.unwrap();
    assert_eq!(body["error"]["code"], "TooManyRequests");
    assert_eq!(graph_status(&emulator, &token).await, 429, "too early");
    assert_eq!(graph_status(&emulator, &other).await, 200, "another tenant");
    assert_eq!(
        emulator.token_v2(&contoso, &[]).await.status(),
        200,
        "tokens still flow"
    );

    emulator.advance_clock(5).await;
    assert_eq!(graph_status(&emulator, &token).await, 200);
    let counts = emulator.requests().await;
    assert_eq!(counts["faults"]["graph_organization"]["violations"], 1);
}

async fn audit(emulator: &TestEmulator, query: &str) -> (u16, Value) {
    emulator
        .control(Method::GET, &format!("/audit{query}"), None)
        .await
}

#[tokio::test]
async fn the_audit_says_who_asked_and_why_refusals_were_refused_without_secrets() {
    let emulator = spawn_emulator().await;
    let contoso = emulator.contoso();
    let token = emulator.contoso_token().await;
    let secret = "wrong-secret-SHOULD-NOT-APPEAR";
    let assertion = "eyJhbGciOiJub25lIn0.eyJzZWNyZXQiOnRydWV9.ASSERTION-SHOULD-NOT-APPEAR";

    // Arrange: a served request, refusals of several kinds, and a throttle violation.
    emulator
        .token_v2(&contoso, &[("client_secret", secret)])
        .await;
    emulator
        .token_v2(
            &contoso,
            &[
                ("client_secret", ""),
                ("client_assertion", assertion),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
            ],
        )
        .await;
    emulator
        .token_v2(&contoso, &[("client_id", "PASTED-SECRET-AS-CLIENT-ID")])
        .await;
    emulator.token_v2("nobody.example", &[]).await;
    emulator
        .graph("/v1.0/organization", Some("not.a.token-SHOULD-NOT-APPEAR"))
        .await;
    emulator.graph("/v1.0/organization", Some(&token)).await;
    emulator
        .http
        .get(emulator.url(&format!(
            "/{contoso}/adminconsent?client_id={}&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&state=STATE-SHOULD-NOT-APPEAR",
            emulator.client_id
        )))
        .send()
        .await
        .unwrap();
    hostile(
        &emulator,
        json!({"mode": "throttle", "endpoints": ["token"]}),
    )
    .await;
    emulator.token_v2(&contoso, &[]).await;
    emulator.token_v2(&contoso, &[]).await;

    // Act
    let (status, body) = audit(&emulator, "?limit=1000").await;

    // Assert
    assert_eq!(status, 200);
    let text = body.to_string();
    for hidden in [
        secret,
        "ASSERTION-SHOULD-NOT-APPEAR",
        "PASTED-SECRET-AS-CLIENT-ID",
        "SHOULD-NOT-APPEAR",
        &emulator.client_secret,
        &token,
    ] {
        assert!(!text.contains(hidden), "{hidden} is in the audit: {text}");
    }
    let requests = body["requests"].as_array().unwrap();
    assert_eq!(body["capacity"], 1000);
    let find = |path: &str, code: &str| {
        requests
            .iter()
            .find(|r| r["path"] == path && r["refusal"]["code"] == code)
            .unwrap_or_else(|| panic!("{path} {code} in {text}"))
            .clone()
    };
    let token_path = format!("/{contoso}/oauth2/v2.0/token");
    let bad_secret = find(&token_path, "AADSTS7000215");
    assert_eq!(bad_secret["status"], 401);
    assert_eq!(bad_secret["method"], "POST");
    assert_eq!(bad_secret["client_id"], emulator.client_id.as_str());
    assert_eq!(bad_secret["tenant"], contoso.as_str());
    assert_eq!(bad_secret["refusal"]["reason"], "invalid client secret");
    assert!(
        requests.iter().any(|r| r["path"] == token_path.as_str()
            && r["client_id"] == emulator.client_id.as_str()
            && r["status"] == 400
            && r["refusal"]["code"]
                .as_str()
                .is_some_and(|c| c.starts_with("AADSTS50"))),
        "the refused assertion: {text}"
    );
    let not_a_guid = find(&token_path, "AADSTS700038");
    assert_eq!(not_a_guid["client_id"], Value::Null, "only GUIDs are kept");
    let unknown = find("/nobody.example/oauth2/v2.0/token", "AADSTS90002");
    assert_eq!(unknown["tenant"], "nobody.example");
    let bad_token = find("/v1.0/organization", "InvalidAuthenticationToken");
    assert_eq!(bad_token["status"], 401);
    let consent = find(&format!("/{contoso}/adminconsent"), "AADSTS50011");
    assert_eq!(consent["status"], 400);
    assert_eq!(consent["client_id"], emulator.client_id.as_str());
    let served: Vec<&Value> = requests
        .iter()
        .filter(|r| r["path"] == "/v1.0/organization" && r["status"] == 200)
        .collect();
    assert_eq!(served.len(), 1);
    assert!(served[0].get("refusal").is_none());
    assert_eq!(served[0]["tenant"], contoso.as_str());
    // Newest first: the violation, then the throttled request before it.
    assert!(
        requests[0]["refusal"]["reason"]
            .as_str()
            .unwrap()
            .contains("violation"),
        "{}",
        requests[0]
    );
    assert_eq!(requests[0]["status"], 429);
    assert!(
        requests[1]["refusal"]["reason"]
            .as_str()
            .unwrap()
            .contains("Retry-After 10 s")
    );
    assert!(requests[0]["seq"].as_u64() > requests[1]["seq"].as_u64());

    let (status, last) = audit(&emulator, "?limit=2").await;
    assert_eq!(status, 200);
    assert_eq!(last["requests"].as_array().unwrap().len(), 2);
    for query in ["?limit=0", "?limit=1001", "?limit=x", "?other=1"] {
        assert_eq!(audit(&emulator, query).await.0, 400, "{query}");
    }
    let (status, _) = emulator.control(Method::DELETE, "/audit", None).await;
    assert_eq!(status, 204);
    let (_, emptied) = audit(&emulator, "").await;
    assert_eq!(
        emptied["requests"],
        json!([]),
        "reading and clearing the audit are not recorded"
    );
}
