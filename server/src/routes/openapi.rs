//! The OpenAPI document, generated from the handlers' annotations and served at
//! `/api/openapi.json`, so the contract cannot drift from the code.
//!
//! The answers every route shares come from the extractors and layers, not from each
//! handler, so [`CommonAnswers`] adds them to the document by the same rules the code
//! follows: 401 wherever a token is required, 400 wherever a path or query value is
//! parsed, 400/413/415/422 wherever a JSON body is read, 408 and 503 everywhere (the
//! request timeout, and a busy database or store answered with `Retry-After`), and the
//! bounds of `limit`. A schemathesis run against the served document checks that no
//! answer falls outside it.

use axum::routing::get;
use axum::{Json, Router};
use shared_models::MAX_PAGE_LIMIT;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
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

struct CommonAnswers;

impl Modify for CommonAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let probes = path == "/healthz" || path == "/readyz";
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
                &mut item.head,
            ]
            .into_iter()
            .flatten()
            {
                add_common_answers(op, probes);
            }
        }
    }
}

/// A problem answer, as every error is.
fn problem(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                shared_models::PROBLEM_CONTENT_TYPE,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build(),
    )
}

fn add_common_answers(op: &mut Operation, probes: bool) {
    let authenticated = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let params = op.parameters.as_deref().unwrap_or_default();
    let parsed_values = params
        .iter()
        .any(|p| matches!(p.parameter_in, ParameterIn::Path | ParameterIn::Query));
    let json_body = op
        .request_body
        .as_ref()
        .is_some_and(|b| b.content.contains_key("application/json"));
    let any_body = op.request_body.is_some();
    // A path value or a filter naming a unit, user or form that does not exist, or is
    // outside the caller's area, is a 404 (existence is not revealed).
    let names_a_resource = params.iter().any(|p| match p.parameter_in {
        ParameterIn::Path => true,
        ParameterIn::Query => p.name.ends_with("_id") || p.name == "org_unit",
        _ => false,
    });
    let mut common = Vec::new();
    if authenticated {
        common.push((
            "401",
            "no valid access token (missing, malformed, expired or revoked)",
        ));
    }
    if parsed_values || json_body {
        common.push((
            "400",
            "a path or query value, or the JSON body, is malformed",
        ));
    }
    if names_a_resource && !probes {
        common.push(("404", "not found, or outside your area"));
    }
    if json_body {
        common.push(("415", "the body is not `application/json`"));
        common.push((
            "422",
            "the body's content is invalid; `errors` names each field",
        ));
    }
    if any_body {
        common.push(("413", "the body exceeds the size limit"));
    }
    if !probes {
        common.push((
            "408",
            "the request was not completed within the request timeout",
        ));
        common.push((
            "503",
            "the database or the object store is busy or down; see `Retry-After`",
        ));
    }
    for (status, description) in common {
        op.responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| problem(description));
    }
    // Every list's `limit` has the bounds `page_limit` enforces.
    for param in op.parameters.iter_mut().flatten() {
        if param.name == "limit" && matches!(param.parameter_in, ParameterIn::Query) {
            param.schema = Some(RefOr::T(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                    .minimum(Some(1))
                    .maximum(Some(MAX_PAGE_LIMIT))
                    .into(),
            ));
        }
    }
}

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "Đồng Hành API", description = "Harm-reduction field work: forms, submissions, review, reports."),
    modifiers(&BearerAuth, &CommonAnswers),
    paths(
        super::health::get_healthz,
        super::health::get_readyz,
        super::auth::post_login,
        super::auth::post_refresh,
        super::auth::post_enrol,
        super::auth::post_logout,
        super::auth::get_me,
        super::users::list_users,
        super::users::create_user,
        super::users::get_user,
        super::users::update_user,
        super::users::revoke_device,
        super::users::enrol_device,
        super::users::list_devices,
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
