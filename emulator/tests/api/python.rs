//! Python clients nobody here wrote (MSAL, the Standard Webhooks library, JSON Schema) run
//! against our servers. Shared by both crates' tests: the application's include this file.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

/// The python of a virtualenv with MSAL: `CONSENTRY_TEST_PYTHON`, else the one
/// `tests/python/setup-venv.sh` makes (and reuses) under `target/`.
fn msal_python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        if let Ok(python) = std::env::var("CONSENTRY_TEST_PYTHON") {
            return PathBuf::from(python);
        }
        // The workspace's script: the root crate's directory, or its parent from a member.
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .map(|dir| dir.join("tests/python/setup-venv.sh"))
            .find(|script| script.exists())
            .expect("tests/python/setup-venv.sh in the workspace");
        let output = Command::new("bash")
            .arg(&script)
            .output()
            .expect("bash runs");
        assert!(
            output.status.success(),
            "could not set up MSAL for Python (needs python3 with venv and PyPI): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
    })
}

/// Runs `tests/python/{script}` of the crate under test with `args` in the MSAL virtualenv
/// and returns the JSON it prints.
pub async fn run_python(script: &str, args: &[std::ffi::OsString]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(script);
    let output = tokio::process::Command::new(msal_python())
        .arg(script)
        .args(args)
        // Where set, these would override MSAL's `verify`: the test names its CA itself.
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE")
        .output()
        .await
        .expect("python runs");
    assert!(
        output.status.success(),
        "MSAL script failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the script prints JSON")
}
