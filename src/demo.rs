//! `consentry demo`: the whole admin-consent protocol on this machine, no Azure account.
//!
//! Starts the emulator, then plays both sides over real HTTP: a tenant administrator who
//! accepts on the consent page, and the app that checks the callback's `state`, proves the
//! consent with a client-credentials token and reads the organisation from Graph. The
//! emulator then keeps running for you to explore.

use anyhow::{Context, bail};
use base64::Engine;
use reqwest::redirect::Policy;
use serde_json::Value;

use crate::emulator::{CONTOSO, DEFAULT_CLIENT_SECRET, Emulator, EmulatorConfig};

pub struct DemoOptions {
    pub emulator_port: u16,
}

pub async fn run(options: DemoOptions) -> anyhow::Result<()> {
    let config = EmulatorConfig {
        port: options.emulator_port,
        ..EmulatorConfig::default()
    };
    let client_id = config.client_id.to_string();
    let redirect_uri = config.redirect_uris[0].clone();
    let emulator = Emulator::build(config)?;
    let base = emulator.base_url().to_owned();
    println!("{}", emulator.banner());
    let server = tokio::spawn(emulator.run_until_stopped());

    walkthrough(&base, &client_id, &redirect_uri)
        .await
        .context("the walkthrough failed")?;
    println!("\nThe emulator keeps running at {base} (Ctrl-C stops it).");
    server.await.context("the emulator task")??;
    Ok(())
}

/// Plays the admin and the app against the emulator at `base`; errors say which step failed.
pub async fn walkthrough(base: &str, client_id: &str, redirect_uri: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()?;
    let mut random = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random)
        .map_err(|_| anyhow::anyhow!("no randomness"))?;
    let state = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random);
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("state", &state)
        .finish();

    println!("walkthrough");
    let consent_url = format!("{base}/organizations/adminconsent?{query}");
    let page = http.get(&consent_url).send().await?;
    if !page.status().is_success() {
        bail!("the consent page answered {}", page.status());
    }
    println!("  1. the app sends the admin to {consent_url}");

    let decision = http
        .post(format!("{base}/organizations/adminconsent"))
        .form(&[
            ("request", query.as_str()),
            ("decision", "accept"),
            ("tenant", &CONTOSO.to_string()),
        ])
        .send()
        .await?;
    let location = decision
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .context("Accept did not redirect")?
        .to_owned();
    println!("  2. the Contoso admin accepts; Microsoft redirects to\n     {location}");

    let callback = url::Url::parse(&location)?;
    let param = |name: &str| {
        callback
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    if param("state").as_deref() != Some(state.as_str()) {
        bail!("the callback's state does not match the one sent");
    }
    let tenant = param("tenant").context("the callback names no tenant")?;
    println!("  3. the callback's state matches; it claims tenant {tenant} (not yet trusted)");

    let token: Value = http
        .post(format!("{base}/{tenant}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", DEFAULT_CLIENT_SECRET),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await?
        .json()
        .await?;
    let access_token = token["access_token"].as_str().context("no access token")?;
    let payload = access_token.split('.').nth(1).context("not a JWT")?;
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?)?;
    println!(
        "  4. a client-credentials token for that tenant proves the consent: tid {}, roles {}",
        claims["tid"], claims["roles"]
    );

    let org: Value = http
        .get(format!("{base}/v1.0/organization"))
        .bearer_auth(access_token)
        .send()
        .await?
        .json()
        .await?;
    let users = http
        .get(format!("{base}/v1.0/users/$count"))
        .bearer_auth(access_token)
        .header("ConsistencyLevel", "eventual")
        .send()
        .await?
        .text()
        .await?;
    println!(
        "  5. Graph with that token: organisation {} ({}), {users} users",
        org["value"][0]["displayName"], org["value"][0]["id"]
    );
    Ok(())
}
