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
    app.emulator
        .control(
            reqwest::Method::DELETE,
            &format!("/tenants/{contoso}/consent"),
            None,
        )
        .await;

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
    let after = signed_in.get("/admin").await;
    assert_eq!(after.status(), 303, "the old session ended");
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
