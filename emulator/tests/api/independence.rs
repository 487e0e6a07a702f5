//! The emulator depends on nothing of the application's. A normal dependency on `consentry`
//! would be a cycle cargo refuses; a dev- or build-dependency would not be, so this reads
//! the workspace's manifests as cargo does.

use serde_json::Value;

#[test]
fn the_emulator_crate_depends_on_nothing_of_the_application() {
    // Arrange: cargo's own view of the workspace (manifests only, no network).
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let packages = metadata["packages"].as_array().expect("packages");
    let package = |name: &str| {
        packages
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} is a member of the workspace"))
    };

    // Act
    let emulator: Vec<&str> = package("consentry-emulator")["dependencies"]
        .as_array()
        .expect("dependencies")
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    let application: Vec<&str> = package("consentry")["dependencies"]
        .as_array()
        .expect("dependencies")
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();

    // Assert: the application uses the emulator, never the other way round.
    assert!(
        application.contains(&"consentry-emulator"),
        "{application:?}"
    );
    assert!(emulator.contains(&"actix-web"), "{emulator:?}");
    assert!(!emulator.contains(&"consentry"), "{emulator:?}");
}
