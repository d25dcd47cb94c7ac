//! The OpenAPI document, generated from the handlers' annotations and served at
//! `/api/openapi.json`, so the contract cannot drift from the code.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::state::AppState;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "Đồng Hành API", description = "Harm-reduction field work: forms, submissions, review, reports."),
    modifiers(&BearerAuth),
    paths(
        super::health::get_healthz,
        super::health::get_readyz,
        super::auth::post_login,
        super::auth::post_refresh,
        super::auth::post_logout,
        super::auth::get_me,
        super::users::list_users,
        super::users::create_user,
        super::users::get_user,
        super::users::update_user,
        super::users::revoke_device,
        super::org_units::list_org_units,
        super::org_units::create_org_unit,
        super::org_units::get_org_unit,
        super::org_units::update_org_unit,
        super::teams::list_teams,
        super::teams::create_team,
        super::forms::list_forms,
        super::forms::get_form,
        super::forms::get_form_version,
        super::forms::get_form_schema,
        super::forms::get_form_version_schema,
        super::forms::publish_form,
        super::hotspots::list_hotspots,
        super::hotspots::create_hotspot,
        super::hotspots::get_hotspot,
        super::hotspots::update_hotspot,
        super::submissions::create_submission,
        super::submissions::list_submissions,
        super::submissions::get_submission,
        super::submissions::sync_changes,
        super::photos::head_photo,
        super::photos::put_photo,
        super::photos::get_photo,
        super::review::review_submission,
        super::review::review_submissions,
        super::review::review_queue,
        super::review::reopen_submission,
        super::review::revise_submission,
        super::review::list_revisions,
        super::referrals::list_referrals,
        super::referrals::get_referral,
        super::reports::indicators_report,
        super::reports::put_target,
        super::reports::export_submissions,
        super::stock::record_stock_movement,
        super::stock::stock_report,
        super::audit::list_audit,
    ),
    components(schemas(shared_models::Problem, shared_models::FieldError, shared_models::Role, shared_models::ReviewStatus, shared_models::ReferralStatus, shared_models::HotspotType))
)]
pub struct ApiDoc;

/// `GET /api/openapi.json`.
pub async fn get_openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

pub fn router() -> Router<AppState> {
    Router::new().route("/api/openapi.json", get(get_openapi))
}
