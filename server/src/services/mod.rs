//! The rules of the program, apart from HTTP: each service takes the state or a
//! connection and a `Principal`, and answers with wire types or an `ApiError`.

pub mod accounts;
pub mod audit;
pub mod devices;
pub mod forms;
pub mod hotspots;
pub mod odk;
pub mod org_units;
pub mod photos;
pub mod referrals;
pub mod reports;
pub mod review;
pub mod rollup;
pub mod sessions;
pub mod stock;
pub mod submissions;
pub mod sync;
pub mod web_sessions;

/// The commodities handed out in outreach, in the order of the visit form's columns
/// (`condoms_male`, `condoms_female`, `lubricant`, `self_test_kits`).
pub const COMMODITIES: [&str; 4] = ["male_condom", "female_condom", "lubricant", "self_test_kit"];
