//! PostgreSQL going away and coming back: a cluster of the test's own (initdb, pg_ctl) is
//! stopped under a running consentry and started again. Meanwhile requests that need the
//! database are answered 503 with `Retry-After` and `/readyz` fails; afterwards consentry
//! serves again by itself, and nothing written before is lost.
//!
//! Needs PostgreSQL's server binaries (`/usr/lib/postgresql/*/bin`, or
//! `CONSENTRY_TEST_PG_BIN`); `.ci/run` installs them. Without them the test prints
//! `SKIPPED` (under `CI` it fails).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::app_helpers::{TestDatabase, poll, spawn_on};

/// The server binaries' folder, the newest version's.
fn pg_bin() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("CONSENTRY_TEST_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
    });
    found.pop()
}

/// A throw-away cluster: its folder and port, run as `postgres` when the tests run as root
/// (initdb refuses root).
struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_root: bool,
}

impl Cluster {
    fn command(&self, program: &str) -> Command {
        if self.as_root {
            let mut command = Command::new("runuser");
            command
                .args(["-u", "postgres", "--"])
                .arg(self.bin.join(program));
            command
        } else {
            Command::new(self.bin.join(program))
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let output = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            output.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-w",
                "-o",
                &options,
                "start",
            ],
        );
    }

    /// As a crash or a lost network would: no goodbye to the clients.
    fn stop(&self) {
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn new(bin: PathBuf) -> Cluster {
        let dir = std::env::temp_dir().join(format!("consentry-pg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("the cluster's folder");
        let as_root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if as_root {
            let status = Command::new("chown")
                .arg("postgres")
                .arg(&dir)
                .status()
                .expect("chown");
            assert!(status.success(), "chown postgres {}", dir.display());
        }
        let cluster = Cluster {
            bin,
            port: crate::crash::free_port(),
            dir,
            as_root,
        };
        cluster.run(
            "initdb",
            &[
                "-D",
                &cluster.data(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
        );
        cluster.start();
        cluster
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(Path::new(&self.dir));
    }
}

#[tokio::test]
async fn a_postgresql_outage_gets_503s_and_consentry_recovers_by_itself() {
    let Some(bin) = pg_bin() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide PostgreSQL's server binaries (see .ci/run)"
        );
        eprintln!("SKIPPED: no PostgreSQL server binaries (/usr/lib/postgresql/*/bin)");
        return;
    };
    // Arrange: consentry on a cluster of its own, a tenant onboarded.
    let cluster = Cluster::new(bin);
    let app = spawn_on(
        |raw, _| raw.set("CONSENTRY_DATABASE_CONNECT_TIMEOUT", "2s"),
        None,
        TestDatabase::borrowed(&cluster.url()),
    )
    .await;
    let contoso = app.emulator.contoso();
    assert_eq!(app.onboard(&app.browser(), &contoso).await.status, "active");
    let browser = app.browser();
    assert_eq!(browser.get("/readyz").await.status(), 200);

    // Act: the server goes away, then comes back.
    cluster.stop();
    let refused = browser.signup_response(&[]).await;
    let refused_status = refused.status();
    let retry_after = refused
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let readyz_down = browser.get("/readyz").await.status();
    cluster.start();
    poll("consentry serving again", 30, || async {
        (app.browser().signup_response(&[]).await.status() == 303).then_some(())
    })
    .await;
    let readyz_back = browser.get("/readyz").await.status();

    // Assert
    assert_eq!(refused_status, 503, "the sign-up is refused, not failed");
    assert!(retry_after.is_some(), "Retry-After in seconds");
    assert_eq!(readyz_down, 503, "not ready while the database is away");
    assert_eq!(readyz_back, 200, "ready again");
    let tenant = app
        .store
        .tenant(consentry::domain::TenantId::parse(&contoso).expect("id"))
        .await
        .expect("read")
        .expect("still there");
    assert_eq!(tenant.status, "active", "nothing written before was lost");
    drop(app);
}
