//! Logs go to stderr through `tracing`, filtered by `RUST_LOG` (default `info`), so stdout
//! stays for what a command prints on purpose (the emulator's banner, JSON listings).
//! `CONSENTRY_LOG_FORMAT=json` writes one JSON object a line instead of text, for log
//! collectors: `timestamp`, `level`, `message` and the event's fields at the top level, and
//! the request's span (`span.request_id`, `method`, `path`) for what happened serving one.
//!
//! A client that sends bytes that are not HTTP (a bad request line, a broken header, a
//! connection dropped mid-body) is not our error, but actix-http logs each such connection
//! at ERROR ("stream error: request parse error: ..."). Those events are logged here at
//! DEBUG instead, so ERROR stays for what needs an operator. Our own 5xx stay at ERROR
//! (the error-page middleware logs them).

use std::io::{IsTerminal, Write};

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, fmt};

/// Installs the global subscriber with `RUST_LOG`, or `info` when it is unset; a second
/// call (tests) is a no-op.
pub fn init() {
    init_with_default("info");
}

/// As [`init`], with `default` as the filter when `RUST_LOG` is unset.
pub fn init_with_default(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let client_faults = ClientFaults {
        // The faults are logged at DEBUG: shown when the filter lets any DEBUG through.
        visible: filter
            .max_level_hint()
            .is_none_or(|max| max >= LevelFilter::DEBUG),
        json: false,
    };
    let format = std::env::var(LOG_FORMAT_VAR).ok();
    let format = format.as_deref().map(str::trim).unwrap_or_default();
    let json = format.eq_ignore_ascii_case("json");
    let client_faults = ClientFaults {
        json,
        ..client_faults
    };
    let (text, json) = if json {
        let output = fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_target(false)
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false);
        (None, Some(output))
    } else {
        let output = fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            // Colour codes only for a person at a terminal, not in files or log collectors.
            .with_ansi(std::io::stderr().is_terminal());
        (Some(output), None)
    };
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(client_faults)
        .with(text)
        .with(json)
        .try_init()
        .is_ok();
    if installed
        && !(format.is_empty()
            || format.eq_ignore_ascii_case("text")
            || format.eq_ignore_ascii_case("json"))
    {
        tracing::warn!("{LOG_FORMAT_VAR} is neither text nor json; logging as text");
    }
}

/// `text` (the default) or `json`. Read from the environment only: logging starts before
/// the configuration file is read.
pub const LOG_FORMAT_VAR: &str = "CONSENTRY_LOG_FORMAT";

/// Where actix-http logs what a client's connection did wrong.
const ACTIX_H1: &str = "actix_http::h1";

/// actix-http's messages (at ERROR) that describe a client's fault, not ours: malformed
/// requests, I/O errors and timeouts of the client's connection, a body we stopped
/// reading (we refused the request), a peer that stopped reading. Everything else it logs
/// at ERROR (a response body failing, an internal error) stays an error.
const CLIENT_FAULTS: &[&str] = &[
    "stream error: request parse error",
    "stream error: I/O error",
    "stream error: request did not complete within",
    "stream error: connection shutdown timeout",
    "stream error: handler dropped payload",
    "write zero; closing",
];

/// Demotes actix-http's client-fault events from ERROR to DEBUG.
struct ClientFaults {
    visible: bool,
    /// Written as a JSON object, like every other line.
    json: bool,
}

impl<S: Subscriber> Layer<S> for ClientFaults {
    /// Refusing the event here drops it for every layer; it is written again, at DEBUG,
    /// when DEBUG is enabled. (A layer cannot emit an event of its own while one is being
    /// dispatched: tracing drops re-entrant events.)
    fn event_enabled(&self, event: &Event<'_>, _: Context<'_, S>) -> bool {
        let meta = event.metadata();
        if *meta.level() != Level::ERROR || !meta.target().starts_with(ACTIX_H1) {
            return true;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        if !CLIENT_FAULTS.iter().any(|m| message.0.starts_with(m)) {
            return true;
        }
        if self.visible {
            let now = time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            let line = if self.json {
                let object = serde_json::json!({
                    "timestamp": now,
                    "level": "DEBUG",
                    "message": format!("a client sent what we could not serve: {}", message.0),
                });
                format!("{object}\n")
            } else {
                format!(
                    "{now} DEBUG a client sent what we could not serve: {}\n",
                    message.0.escape_debug()
                )
            };
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
        false
    }
}

/// The `message` field of an event.
struct Message(String);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_owned();
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}
