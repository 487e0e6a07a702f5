//! Integration tests: one binary, real HTTP on port 0 against the emulator.

mod app_helpers;
mod browser;
mod cli;
mod helpers;
/// The Python runner is the emulator's tests', shared rather than copied.
#[path = "../../emulator/tests/api/python.rs"]
mod python;

mod admin;
mod api_keys;
mod api_tenants;
mod api_token_load;
mod attacks;
mod audit;
mod callback;
mod charts;
mod cluster;
mod console;
mod crash;
mod credentials;
mod event_repeats;
mod fuzz;
mod graph_client;
mod health;
mod instances;
mod invitations;
mod login;
mod logs;
mod look;
mod metrics;
mod migrations;
mod monitoring;
mod onboarding;
mod openapi;
mod operator_sign_in;
mod operators;
mod outbox;
mod postgres_outage;
mod postgres_schema;
mod quirks;
mod shared_database;
mod sign_in;
mod signup;
mod token_engine;
mod web_hygiene;
mod webhook_delivery;
mod webhook_endpoints;
mod webhooks;
