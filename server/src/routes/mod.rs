//! HTTP only: each handler extracts and checks its input, calls a service, and maps the
//! result. A handler's arguments say who may call it (`Admin`, `Supervisor`, …).

pub mod audit;
pub mod auth;
pub mod forms;
pub mod health;
pub mod hotspots;
pub mod openapi;
pub mod openrosa;
pub mod org_units;
pub mod photos;
pub mod referrals;
pub mod reports;
pub mod review;
pub mod stock;
pub mod submissions;
pub mod teams;
pub mod users;

use axum::Router;

use crate::state::AppState;

/// Every route of the API, and OpenRosa's for ODK Collect.
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .merge(openrosa::router(state))
        .merge(health::router())
        .merge(openapi::router())
        .merge(auth::router())
        .merge(users::router())
        .merge(org_units::router())
        .merge(teams::router())
        .merge(forms::router())
        .merge(hotspots::router())
        .merge(submissions::router())
        .merge(photos::router())
        .merge(review::router())
        .merge(referrals::router())
        .merge(reports::router())
        .merge(stock::router())
        .merge(audit::router())
}
