//! The binary's commands: start-up errors name the key; operators are created for real.

use std::process::Command;

fn consentry() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_consentry"));
    for (key, _) in std::env::vars() {
        if key.starts_with("CONSENTRY_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

#[test]
fn serve_without_configuration_names_the_missing_key_and_exits_1() {
    let output = consentry().arg("serve").output().expect("runs");

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("CONSENTRY_CLIENT_ID is required"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn serve_with_an_invalid_value_names_that_key_and_hides_the_secret() {
    let output = consentry()
        .arg("serve")
        .env(
            "CONSENTRY_CLIENT_ID",
            "6c0ff3e1-b5a8-4f1e-9d2c-4a7b3e8f5d90",
        )
        .env("CONSENTRY_CLIENT_SECRET", "super-secret-value")
        .env("CONSENTRY_SESSION_KEY", "dG9vIHNob3J0")
        .output()
        .expect("runs");

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains("CONSENTRY_SESSION_KEY is invalid"),
        "{stderr}"
    );
    assert!(!stderr.contains("super-secret-value"), "{stderr}");
}

#[test]
fn serve_with_an_unknown_key_in_the_toml_file_says_which() {
    let path = std::env::temp_dir().join(format!("consentry-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&path, "clientid = \"x\"\n").expect("write");

    let output = consentry()
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .expect("runs");

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("unknown key 'clientid'"), "{stderr}");
}

#[tokio::test]
async fn operators_add_stores_an_argon2_hash_and_refuses_short_passwords() {
    let db = format!(
        "sqlite://{}",
        std::env::temp_dir()
            .join(format!("consentry-cli-{}.db", uuid::Uuid::new_v4()))
            .display()
    );

    let short = consentry()
        .args(["operators", "add", "alice", "--database", &db])
        .env("CONSENTRY_OPERATOR_PASSWORD", "short")
        .output()
        .expect("runs");
    let ok = consentry()
        .args(["operators", "add", "alice", "--database", &db])
        .env("CONSENTRY_OPERATOR_PASSWORD", "a long enough password")
        .output()
        .expect("runs");
    let bad_name = consentry()
        .args(["operators", "add", "al ice", "--database", &db])
        .env("CONSENTRY_OPERATOR_PASSWORD", "a long enough password")
        .output()
        .expect("runs");

    assert_eq!(short.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 12 characters"));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(bad_name.status.code(), Some(1));
    let store = consentry::store::Store::connect(&db).await.expect("store");
    let alice = store
        .operator_by_name("alice")
        .await
        .expect("query")
        .expect("alice exists");
    assert!(alice.password_hash.starts_with("$argon2id$"));
    assert!(consentry::domain::password::verify_password(
        "a long enough password",
        &alice.password_hash
    ));
}

fn configured(app: &crate::app_helpers::TestApp) -> Command {
    let mut cmd = consentry();
    cmd.env(
        "CONSENTRY_CLIENT_ID",
        consentry::emulator::DEFAULT_CLIENT_ID.to_string(),
    )
    .env(
        "CONSENTRY_CLIENT_SECRET",
        consentry::emulator::DEFAULT_CLIENT_SECRET,
    )
    .env("CONSENTRY_AUTHORITY_HOST", &app.emulator.base)
    .env("CONSENTRY_GRAPH_HOST", &app.emulator.base)
    .env("CONSENTRY_DATABASE_URL", &app.database_url)
    .env(
        "CONSENTRY_SESSION_KEY",
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    );
    cmd
}

#[tokio::test]
async fn tenants_verify_all_notices_a_revoked_consent_and_prints_progress() {
    let app = crate::app_helpers::spawn_app().await;
    let contoso = app.emulator.contoso();
    app.onboard(&app.browser(), &contoso).await;
    app.onboard(&app.browser(), crate::helpers::FABRIKAM).await;
    app.emulator.revoke(&contoso).await;

    let output = tokio::task::spawn_blocking({
        let mut cmd = configured(&app);
        move || {
            cmd.args(["tenants", "verify", "--all"])
                .output()
                .expect("runs")
        }
    })
    .await
    .expect("join");

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stdout.contains("active: 1") && stdout.contains("revoked: 1"),
        "{stdout}"
    );
    assert!(stderr.contains("2/2"), "a progress line: {stderr}");
    assert_eq!(app.tenant(&contoso).await.expect("row").status, "revoked");
}

#[tokio::test]
async fn tenants_verify_one_unknown_tenant_says_so() {
    let app = crate::app_helpers::spawn_app().await;

    let output = tokio::task::spawn_blocking({
        let mut cmd = configured(&app);
        move || {
            cmd.args(["tenants", "verify", "c6e1b9d4-8a2f-4b73-9e05-72d4a1f8c3b6"])
                .output()
                .expect("runs")
        }
    })
    .await
    .expect("join");

    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no tenant c6e1b9d4"));
}

#[test]
fn emulator_with_a_missing_or_bad_certificate_file_names_it_and_exits_1() {
    let missing = std::env::temp_dir().join(format!("consentry-{}.pem", uuid::Uuid::new_v4()));
    let not_a_certificate =
        std::env::temp_dir().join(format!("consentry-{}.pem", uuid::Uuid::new_v4()));
    std::fs::write(&not_a_certificate, "hello\n").expect("write");

    let outputs: Vec<_> = [&missing, &not_a_certificate]
        .into_iter()
        .map(|path| {
            consentry()
                .args(["emulator", "--port", "0", "--certificate"])
                .arg(path)
                .output()
                .expect("runs")
        })
        .collect();
    let _ = std::fs::remove_file(&not_a_certificate);

    for (output, path, reason) in [
        (&outputs[0], &missing, "reading --certificate"),
        (&outputs[1], &not_a_certificate, "not a PEM certificate"),
    ] {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(&path.display().to_string()), "{stderr}");
        assert!(stderr.contains(reason), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[tokio::test]
async fn operators_add_for_an_existing_name_signs_out_their_sessions() {
    let app = crate::app_helpers::spawn_app().await;
    let signed_in = app.operator().await;
    let hash = consentry::domain::password::hash_password("bob's own long password").expect("hash");
    app.store
        .upsert_operator("bob", &hash, time::OffsetDateTime::now_utc())
        .await
        .expect("bob");
    let bob = app.browser();
    let csrf = bob.csrf_of("/admin/login").await;
    let bob_login = bob
        .post_form(
            "/admin/login",
            &[
                ("csrf", &csrf),
                ("name", "bob"),
                ("password", "bob's own long password"),
            ],
        )
        .await;
    assert_eq!(bob_login.status(), 303);
    assert_eq!(signed_in.get("/admin").await.status(), 200);

    // The password of `ops` is reset, e.g. because someone else learnt it.
    let output = tokio::task::spawn_blocking({
        let mut cmd = consentry();
        cmd.args([
            "operators",
            "add",
            crate::app_helpers::OPERATOR,
            "--database",
            &app.database_url,
        ])
        .env("CONSENTRY_OPERATOR_PASSWORD", "a brand new long password");
        move || cmd.output().expect("runs")
    })
    .await
    .expect("join");

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("signed out their sessions"), "{stdout}");
    // Another process ended it: the server trusts a session it read for at most
    // SESSION_TTL (two seconds), then asks the database again.
    let after = app
        .poll("the old session to end", 10, || async {
            let page = signed_in.get("/admin").await;
            (page.status() == 303).then_some(page)
        })
        .await;
    assert_eq!(after.headers()["location"], "/admin/login");
    assert_eq!(
        bob.get("/admin").await.status(),
        200,
        "another operator's session is untouched"
    );
    let csrf = signed_in.csrf_of("/admin/login").await;
    for (password, status) in [
        (crate::app_helpers::OPERATOR_PASSWORD, 401),
        ("a brand new long password", 303),
    ] {
        let answer = signed_in
            .post_form(
                "/admin/login",
                &[
                    ("csrf", &csrf),
                    ("name", crate::app_helpers::OPERATOR),
                    ("password", password),
                ],
            )
            .await;
        assert_eq!(answer.status(), status, "{password}");
    }
}

/// `consentry demo --port 0 --emulator-port 0` as a process of its own, with `env`; killed
/// on drop.
struct DemoProcess {
    _child: tokio::process::Child,
    banner: String,
    site: String,
    emulator: String,
    inbox: String,
    api_key: String,
    database: String,
    db_path: std::path::PathBuf,
}

impl Drop for DemoProcess {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.db_path.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

async fn start_demo(env: &[(&str, &str)]) -> DemoProcess {
    use tokio::io::AsyncBufReadExt;

    // reqwest is built without a crypto provider; the process uses ring, like the server.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db_path = std::env::temp_dir().join(format!("consentry-demo-{}.db", uuid::Uuid::new_v4()));
    let database = format!("sqlite://{}", db_path.display());
    let mut cmd = tokio::process::Command::from(consentry());
    cmd.args([
        "demo",
        "--port",
        "0",
        "--emulator-port",
        "0",
        "--inbox-port",
        "0",
        "--database",
    ])
    .arg(&database)
    .envs(env.iter().copied())
    .env("RUST_LOG", "warn")
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::null())
    .kill_on_drop(true);
    let mut child = cmd.spawn().expect("consentry demo starts");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut banner = String::new();
    while let Some(line) = lines.next_line().await.expect("banner") {
        banner.push_str(&line);
        banner.push('\n');
        if line.starts_with("Open the sign-up page") {
            break;
        }
    }
    // Keep the pipe open and drained while the demo runs.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let url_after = |label: &str| {
        banner
            .lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .unwrap_or_else(|| panic!("no {label} in {banner}"))
            .split_whitespace()
            .next()
            .expect("a URL")
            .trim_end_matches('/')
            .to_owned()
    };
    let site = url_after("sign-up page");
    let emulator = url_after("Microsoft (emulated)");
    let inbox = url_after("webhook inbox");
    let api_key = url_after("API key");
    DemoProcess {
        _child: child,
        banner,
        site,
        emulator,
        inbox,
        api_key,
        database,
        db_path,
    }
}

impl DemoProcess {
    fn browser(&self) -> crate::app_helpers::Browser {
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        crate::app_helpers::Browser {
            http: reqwest::Client::builder()
                .cookie_provider(jar.clone())
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            base: self.site.clone(),
            jar,
        }
    }

    /// Signs in as the demo's operator; the status of the answer.
    async fn sign_in(&self, password: &str) -> u16 {
        let browser = self.browser();
        let csrf = browser.csrf_of("/admin/login").await;
        browser
            .post_form(
                "/admin/login",
                &[
                    ("csrf", &csrf),
                    ("name", consentry::demo::DEMO_OPERATOR),
                    ("password", password),
                ],
            )
            .await
            .status()
            .as_u16()
    }

    /// The inbox page once it shows an event of type `wanted` (30 s at most).
    async fn wait_for_inbox(&self, wanted: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let page = reqwest::get(format!("{}/", self.inbox))
                .await
                .expect("the inbox answers")
                .text()
                .await
                .expect("html");
            if page.contains(&format!("<code>{wanted}</code>")) {
                return page;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {wanted} in the inbox: {page}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    /// The tenant's status in the demo's database, polled until `wanted` (30 s at most).
    async fn wait_for_status(&self, tenant: uuid::Uuid, wanted: &str) {
        let store = consentry::store::Store::connect(&self.database)
            .await
            .expect("store");
        let id = consentry::domain::TenantId::parse(&tenant.to_string()).expect("guid");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let status = store.tenant(id).await.expect("query").map(|t| t.status);
            if status.as_deref() == Some(wanted) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{tenant} is {status:?}, never {wanted}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        store.close().await;
    }
}

#[tokio::test]
async fn demo_with_a_short_verify_interval_notices_a_revoked_consent_without_a_click() {
    let demo = start_demo(&[
        ("CONSENTRY_VERIFY_INTERVAL", "1s"),
        ("CONSENTRY_TOKEN_VERSION", "v1"),
    ])
    .await;
    let contoso = consentry::emulator::CONTOSO;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    // Onboard Contoso as the walk-through does: sign up, accept at "Microsoft", come back.
    let browser = demo.browser();
    let to_microsoft = url::Url::parse(&browser.signup(&[]).await).expect("absolute");
    let decision = http
        .post(format!("{}{}", demo.emulator, to_microsoft.path()))
        .form(&[
            ("request", to_microsoft.query().unwrap_or_default()),
            ("decision", "accept"),
            ("tenant", &contoso.to_string()),
        ])
        .send()
        .await
        .expect("the emulator answers");
    assert_eq!(decision.status(), 302, "{}", demo.banner);
    let callback = decision.headers()["location"].to_str().expect("ascii");
    assert_eq!(browser.get(callback).await.status(), 303);
    demo.wait_for_status(contoso, "active").await;
    let listed: serde_json::Value = http
        .get(format!("{}/api/v1/tenants", demo.site))
        .bearer_auth(&demo.api_key)
        .send()
        .await
        .expect("the API answers")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["data"][0]["id"], contoso.to_string(), "{listed}");
    demo.wait_for_inbox("tenant.connected").await;

    // The administrator revokes the consent; nobody clicks anything in consentry.
    let revoked = http
        .delete(format!(
            "{}/_emulator/tenants/{contoso}/consent",
            demo.emulator
        ))
        .send()
        .await
        .expect("control API");
    assert_eq!(revoked.status(), 200);

    demo.wait_for_status(contoso, "revoked").await;
    let inbox = demo.wait_for_inbox("tenant.status_changed").await;
    assert!(
        !inbox.contains("refused"),
        "every delivery verifies with the endpoint's secret: {inbox}"
    );
    assert!(
        demo.banner.contains("CONSENTRY_VERIFY_INTERVAL=1s"),
        "{}",
        demo.banner
    );
    let requests: serde_json::Value = http
        .get(format!("{}/_emulator/requests", demo.emulator))
        .send()
        .await
        .expect("control API")
        .json()
        .await
        .expect("json");
    assert!(
        requests["endpoints"]["token_v1"].as_u64() > Some(0)
            && requests["endpoints"].get("token_v2").is_none(),
        "CONSENTRY_TOKEN_VERSION=v1 is honoured: {requests}"
    );
}

#[tokio::test]
async fn demo_prints_the_operator_password_only_when_it_made_it_up() {
    let chosen = "a password I chose myself";
    let with_chosen = start_demo(&[("CONSENTRY_OPERATOR_PASSWORD", chosen)]).await;
    let generated = start_demo(&[]).await;

    assert!(
        !with_chosen.banner.contains(chosen),
        "{}",
        with_chosen.banner
    );
    assert!(
        with_chosen
            .banner
            .contains("password from CONSENTRY_OPERATOR_PASSWORD"),
        "{}",
        with_chosen.banner
    );
    assert_eq!(with_chosen.sign_in(chosen).await, 303);
    let shown = generated
        .banner
        .split("password: ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no password in {}", generated.banner))
        .to_owned();
    assert_eq!(generated.sign_in(&shown).await, 303);
}

#[test]
fn demo_with_an_invalid_setting_names_it_and_exits_1() {
    let output = consentry()
        .args([
            "demo",
            "--port",
            "0",
            "--emulator-port",
            "0",
            "--inbox-port",
            "0",
        ])
        .env("CONSENTRY_VERIFY_INTERVAL", "soon")
        .output()
        .expect("runs");

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("CONSENTRY_VERIFY_INTERVAL is invalid"),
        "{stderr}"
    );
}
