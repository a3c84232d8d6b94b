//! End-to-end tests: the runtime with real plugin components, and the real `switchyard` binary.
//!
//! Plugins come from the host's build script: bundled ones from `switchyard::bundled::BUNDLED`,
//! test-only ones (`plugins/testing/*`) from the paths in `switchyard::bundled::TESTING`.

mod access;
mod account;
mod accounts;
mod api;
mod authoring;
mod chromium;
mod console;
mod crash;
mod desk;
mod edge;
mod fake;
mod ingress;
mod insights;
mod lifecycle;
mod live;
mod meta;
mod numbers;
mod onboarding;
mod openapi;
mod operations;
mod people;
mod pg;
mod pipeline;
mod plans;
mod plugins;
mod replies;
mod runtime;
mod schemathesis;
mod secrets;
mod security;
mod serve;
mod smtp;
mod store;
mod telegram;
mod twilio;
