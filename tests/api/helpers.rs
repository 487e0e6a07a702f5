//! Starting servers on port 0 and talking to them over HTTP: the emulator's control-API
//! client comes from its crate (`consentry_emulator::client`, re-exported here).

pub use consentry_emulator::client::*;

/// The crate's client, wrapped so that this suite's modules can add methods of their own
/// (`impl TestEmulator` is not allowed on a type of another crate).
#[derive(Clone)]
pub struct TestEmulator(pub consentry_emulator::client::TestEmulator);

impl std::ops::Deref for TestEmulator {
    type Target = consentry_emulator::client::TestEmulator;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// [`consentry_emulator::client::spawn_emulator`], wrapped.
pub async fn spawn_emulator() -> TestEmulator {
    TestEmulator(consentry_emulator::client::spawn_emulator().await)
}

/// [`consentry_emulator::client::spawn_emulator_with`], wrapped.
pub async fn spawn_emulator_with(
    adjust: impl FnOnce(&mut consentry_emulator::EmulatorConfig),
) -> TestEmulator {
    TestEmulator(consentry_emulator::client::spawn_emulator_with(adjust).await)
}

/// consentry's settings pointed at `emulator`, with the emulated app's default credential.
pub fn settings_for(emulator: &TestEmulator) -> consentry::config::RawSettings {
    let mut raw = consentry::config::RawSettings::default();
    raw.set(
        "CONSENTRY_CLIENT_ID",
        consentry::emulator::DEFAULT_CLIENT_ID.to_string(),
    );
    raw.set(
        "CONSENTRY_CLIENT_SECRET",
        consentry::emulator::DEFAULT_CLIENT_SECRET,
    );
    raw.set("CONSENTRY_AUTHORITY_HOST", emulator.base.as_str());
    raw.set("CONSENTRY_GRAPH_HOST", emulator.base.as_str());
    raw.set(
        "CONSENTRY_SESSION_KEY",
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    );
    raw
}
