//! The API test suite: the real router over real TCP, against SQLite and PostgreSQL, with
//! photo storage on a real S3-compatible server (Garage). Run it with `scripts/test.sh`.

mod helpers;

mod auth;
mod blob_store;
mod browser;
mod console;
mod errors;
mod form_kinds;
mod garage;
mod health;
mod intake;
mod metrics;
mod migrations;
mod odk;
mod org_units;
mod photos;
mod reading;
mod reports;
mod review;
mod schemathesis;
mod stock;
mod users;
