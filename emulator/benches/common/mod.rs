//! What the emulator's benchmark shares with the application's: `--name value` flags, the
//! emulator as a process of its own (so its CPU time is its own) and that CPU time.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The value after `--name` on the command line, parsed (`cargo bench -- --name value`).
pub fn arg<T: std::str::FromStr>(name: &str) -> Option<T> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

/// The emulator process; killed on drop.
pub struct EmulatorProcess {
    pub child: Child,
    pub base: String,
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl EmulatorProcess {
    /// Starts `command` (the emulator with `--port 0`) and reads its URL from the banner.
    pub fn start(mut command: Command) -> EmulatorProcess {
        let mut child = command
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("consentry emulator starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut base = None;
        for line in lines.by_ref() {
            let line = line.expect("banner");
            if let Some(url) = line.trim().strip_prefix("authority host") {
                base = Some(url.trim().to_owned());
                break;
            }
        }
        // Keep reading: closing the pipe while the emulator is still printing its banner makes
        // its next write fail with EPIPE, and `println!` panics on that.
        std::thread::spawn(move || lines.for_each(drop));
        EmulatorProcess {
            child,
            base: base.expect("the banner names the authority host"),
        }
    }
}

/// User plus system CPU seconds of a process, from /proc/PID/stat (Linux).
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat (Linux only)");
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 =
        fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime");
    // USER_HZ, the unit of these fields, is 100 on Linux.
    ticks / 100.0
}
