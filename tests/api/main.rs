//! Integration tests: one binary, real HTTP on port 0 against the emulator.

mod app_helpers;
mod browser;
mod cli;
mod helpers;

mod admin;
mod api_keys;
mod api_tenants;
mod api_token_load;
mod attacks;
mod callback;
mod crash;
mod credentials;
mod emulator_certificates;
mod emulator_consent;
mod emulator_control;
mod emulator_faults;
mod emulator_graph;
mod emulator_hardening;
mod emulator_https;
mod emulator_token;
mod fuzz;
mod graph_client;
mod health;
mod login;
mod logs;
mod monitoring;
mod onboarding;
mod openapi;
mod outbox;
mod quirks;
mod signup;
mod token_engine;
mod web_hygiene;
mod webhook_delivery;
mod webhooks;
