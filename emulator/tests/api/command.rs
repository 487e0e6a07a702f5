//! `consentry-emulator`, the crate's own command: it serves what its banner says, with the
//! flags `consentry emulator` has, and refuses a bad one with a message and exit code 1.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::helpers::{FABRIKAM, REDIRECT_URI};

fn consentry_emulator() -> Command {
    Command::new(env!("CARGO_BIN_EXE_consentry-emulator"))
}

/// Kills the command when the test ends, passed or not.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_command_serves_the_app_and_tenants_its_flags_describe() {
    // Arrange
    let mut child = consentry_emulator()
        .args([
            "--port",
            "0",
            "--app-name",
            "Northwind CRM",
            "--redirect-uri",
        ])
        .arg("https://crm.example.com/callback")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("consentry-emulator starts");
    let stdout = child.stdout.take().expect("stdout");
    let running = Running(child);
    let mut lines = BufReader::new(stdout).lines();
    let base = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            line.trim()
                .strip_prefix("authority host")
                .map(|url| url.trim().to_owned())
        })
        .expect("the banner names the authority host");
    // Keep reading the rest of the banner, so that printing it never fails.
    std::thread::spawn(move || lines.for_each(drop));
    // reqwest is built without a crypto provider; the process uses ring, like the server.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();

    // Act
    let app: Value = http
        .get(format!("{base}/_emulator/app"))
        .send()
        .await
        .expect("the control API answers")
        .json()
        .await
        .expect("JSON");
    let discovery = http
        .get(format!(
            "{base}/{FABRIKAM}/v2.0/.well-known/openid-configuration"
        ))
        .send()
        .await
        .expect("discovery answers");

    // Assert
    assert_eq!(app["display_name"], "Northwind CRM", "{app}");
    assert_eq!(
        app["redirect_uris"],
        serde_json::json!(["https://crm.example.com/callback"]),
        "{app}"
    );
    assert!(!app.to_string().contains(REDIRECT_URI), "{app}");
    assert_eq!(discovery.status(), 200);
    drop(running);
}

#[test]
fn the_command_refuses_a_bad_flag_with_a_message_and_exit_code_1() {
    let output = consentry_emulator()
        .args([
            "--port",
            "0",
            "--redirect-uri",
            "http://crm.example.com/callback",
        ])
        .output()
        .expect("runs");

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("http is allowed only for localhost"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn help_lists_the_flags_of_consentry_emulator() {
    let output = consentry_emulator().arg("--help").output().expect("runs");

    let help = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{help}");
    for flag in [
        "--port",
        "--client-id",
        "--redirect-uri",
        "--permission",
        "--https",
        "--generate-tenants",
        "--certificate",
    ] {
        assert!(help.contains(flag), "{flag} missing from {help}");
    }
}
