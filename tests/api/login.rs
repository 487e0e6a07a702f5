//! The operator sign-in under attack: attempts are counted before their password is hashed
//! (so concurrency buys an attacker nothing), the 429 says the real wait, the right password
//! is never charged, and a name typed into the form cannot forge a log line.

use std::time::Instant;

use futures_util::future::join_all;

use crate::app_helpers::{Browser, OPERATOR, OPERATOR_PASSWORD, set_cookie, spawn_app};

async fn post_login(
    browser: &Browser,
    csrf: &str,
    name: &str,
    password: &str,
) -> reqwest::Response {
    browser
        .post_form(
            "/admin/login",
            &[("csrf", csrf), ("name", name), ("password", password)],
        )
        .await
}

fn retry_after(response: &reqwest::Response) -> u64 {
    response
        .headers()
        .get("retry-after")
        .expect("a Retry-After header")
        .to_str()
        .expect("ascii")
        .parse()
        .expect("whole seconds")
}

#[tokio::test]
async fn sixty_concurrent_wrong_passwords_from_one_address_are_evaluated_at_most_five_times() {
    let app = spawn_app().await;
    let attacker = app.browser();
    let csrf = attacker.csrf_of("/admin/login").await;
    // Half guess the operator's password, half spread over names (one address either way).
    let names: Vec<String> = (0..60)
        .map(|i| {
            if i % 2 == 0 {
                OPERATOR.to_owned()
            } else {
                format!("guess-{i}")
            }
        })
        .collect();
    let started = Instant::now();

    let answers = join_all(names.iter().enumerate().map(|(i, name)| {
        let (attacker, csrf) = (&attacker, &csrf);
        async move { post_login(attacker, csrf, name, &format!("wrong password {i}")).await }
    }))
    .await;
    let right = post_login(&attacker, &csrf, OPERATOR, OPERATOR_PASSWORD).await;
    let elapsed = started.elapsed().as_secs_f64();

    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    let evaluated = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert!((1..=5).contains(&evaluated), "{statuses:?}");
    assert_eq!(evaluated + refused, 60, "{statuses:?}");
    for response in answers.iter().filter(|r| r.status() == 429) {
        assert!(retry_after(response) >= 1);
    }
    // The budget is spent: even the right password waits, and is told for how long. The
    // five failures emptied the bucket after `started`, and one try refills in 60 s.
    let wait = retry_after(&right);
    assert!(set_cookie(&right, "consentry_session").is_none());
    assert!(wait <= 60, "{wait}");
    assert!(
        wait as f64 >= 60.0 - elapsed,
        "Retry-After {wait} s, but the next try is allowed 60 s after the first failure, {elapsed:.1} s ago"
    );
    // The answer is the sign-in form again, saying how long to wait.
    assert_eq!(right.status(), 429);
    let html = right.text().await.expect("html");
    assert!(
        html.contains(&format!("Try again in {wait} seconds.")),
        "{html}"
    );
    assert!(html.contains("action=\"/admin/login\""), "{html}");
    assert_eq!(attacker.get("/admin").await.status(), 303, "not signed in");
}

#[tokio::test]
async fn the_right_password_is_not_counted_as_a_failed_attempt() {
    let app = spawn_app().await;
    let browser = app.browser();
    let csrf = browser.csrf_of("/admin/login").await;
    for attempt in 0..4 {
        let failed = post_login(&browser, &csrf, OPERATOR, "a wrong password").await;
        assert_eq!(failed.status(), 401, "failure {}", attempt + 1);
    }

    // Four of five failures are spent; three good sign-ins in a row cost nothing.
    for login in 0..3 {
        let ok = post_login(&browser, &csrf, OPERATOR, OPERATOR_PASSWORD).await;
        assert_eq!(ok.status(), 303, "good sign-in {}", login + 1);
    }
    let fifth_failure = post_login(&browser, &csrf, OPERATOR, "a wrong password").await;
    let then = post_login(&browser, &csrf, OPERATOR, OPERATOR_PASSWORD).await;

    assert_eq!(
        fifth_failure.status(),
        401,
        "the fifth failure is still allowed"
    );
    assert_eq!(then.status(), 429, "after five failures, a wait");
}

/// `consentry serve` as a process of its own, so that its log (stderr) can be read; killed
/// on drop, its database removed.
struct ServeProcess {
    _child: tokio::process::Child,
    log: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStderr>>,
    base: String,
    db_path: std::path::PathBuf,
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.db_path.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

impl ServeProcess {
    async fn start() -> ServeProcess {
        let db_path =
            std::env::temp_dir().join(format!("consentry-serve-{}.db", uuid::Uuid::new_v4()));
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_consentry"));
        for (key, _) in std::env::vars() {
            if key.starts_with("CONSENTRY_") {
                cmd.env_remove(key);
            }
        }
        cmd.arg("serve")
            .env(
                "CONSENTRY_CLIENT_ID",
                consentry::emulator::DEFAULT_CLIENT_ID.to_string(),
            )
            .env("CONSENTRY_CLIENT_SECRET", "not used: no tenant is checked")
            .env(
                "CONSENTRY_SESSION_KEY",
                "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            )
            .env(
                "CONSENTRY_DATABASE_URL",
                format!("sqlite://{}", db_path.display()),
            )
            .env("CONSENTRY_LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("consentry serve starts");
        let log = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
            child.stderr.take().expect("stderr"),
        ));
        let mut process = ServeProcess {
            _child: child,
            log,
            base: String::new(),
            db_path,
        };
        let serving = process.log_line_with("consentry is serving").await;
        let port = serving
            .split_whitespace()
            .find_map(|w| w.strip_prefix("port="))
            .expect("the log names the port");
        process.base = format!("http://127.0.0.1:{port}");
        process
    }

    /// Reads the log up to the first line containing `needle` (30 s at most); returns it.
    async fn log_line_with(&mut self, needle: &str) -> String {
        self.log_until(needle).await.pop().expect("a line")
    }

    /// Every log line up to and including the first containing `needle`.
    async fn log_until(&mut self, needle: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line =
                tokio::time::timeout(std::time::Duration::from_secs(30), self.log.next_line())
                    .await
                    .unwrap_or_else(|_| panic!("no log line with {needle:?} after {lines:#?}"))
                    .expect("stderr")
                    .unwrap_or_else(|| panic!("the log ended before {needle:?}: {lines:#?}"));
            let found = line.contains(needle);
            lines.push(line);
            if found {
                return lines;
            }
        }
    }
}

#[tokio::test]
async fn a_name_with_a_line_break_cannot_forge_a_log_line() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut serve = ServeProcess::start().await;
    let browser = Browser {
        http: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        base: serve.base.clone(),
        jar: Default::default(),
    };
    let csrf = browser.csrf_of("/admin/login").await;
    let forged = "2026-11-30T20:00:00.000000Z  INFO operator signed in operator=admin";

    let answer = post_login(
        &browser,
        &csrf,
        &format!("nobody\n{forged}\r\n{forged}"),
        "a wrong password",
    )
    .await;

    assert_eq!(answer.status(), 401);
    let log = serve.log_until("status=401").await;
    let failed = log
        .iter()
        .find(|l| l.contains("failed operator login"))
        .unwrap_or_else(|| panic!("no failed login logged: {log:#?}"));
    assert!(
        failed.contains(&format!("operator=nobody\\n{forged}\\r\\n")),
        "the name is logged escaped, on its own line: {failed}"
    );
    assert!(
        !log.iter().any(|l| l.starts_with("2026-11-30T20:00:00")),
        "a forged line: {log:#?}"
    );
}
