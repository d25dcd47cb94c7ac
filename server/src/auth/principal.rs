//! The authenticated caller. Every request re-reads the user row, so a deactivated
//! user's very next request is refused even while their access token is unexpired, and
//! a changed role or org unit takes effect at once.

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};
use sea_orm::EntityTrait;
use shared_models::Role;
use uuid::Uuid;

use crate::db::entities::{org_units, users};
use crate::db::scope::Scope;
use crate::error::ApiError;
use crate::state::AppState;

/// Any authenticated, active user.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: Uuid,
    pub username: String,
    pub role: Role,
    pub org_unit_id: Uuid,
    /// The materialized path of the user's org unit.
    pub org_unit_path: String,
}

impl Principal {
    /// What of the org-unit tree this caller may see.
    pub fn scope(&self) -> Scope {
        match self.role {
            Role::Admin => Scope::All,
            _ => Scope::Subtree(self.org_unit_path.clone()),
        }
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(p.clone());
        }
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or(ApiError::Unauthorized("missing bearer token"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or(ApiError::Unauthorized(
                "expected `Authorization: Bearer <token>`",
            ))?;
        let claims = state.tokens.verify_access(token)?;
        let (user, unit) = users::Entity::find_by_id(claims.sub)
            .find_also_related(org_units::Entity)
            .one(&state.reader)
            .await?
            .ok_or(ApiError::Unauthorized("invalid or expired access token"))?;
        if !user.active {
            return Err(ApiError::Unauthorized("this account is deactivated"));
        }
        let unit = unit.ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("user {} has no org unit", user.id))
        })?;
        let role = Role::parse(&user.role).ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("user {} has an unknown role", user.id))
        })?;
        let principal = Principal {
            user_id: user.id,
            username: user.username,
            role,
            org_unit_id: unit.id,
            org_unit_path: unit.path,
        };
        tracing::Span::current().record("user.id", tracing::field::display(principal.user_id));
        parts.extensions.insert(principal.clone());
        Ok(principal)
    }
}

macro_rules! role_extractor {
    ($(#[$doc:meta])* $name:ident, $allowed:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(pub Principal);

        impl FromRequestParts<AppState> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AppState,
            ) -> Result<Self, Self::Rejection> {
                let p = Principal::from_request_parts(parts, state).await?;
                let allowed: &[Role] = &$allowed;
                if allowed.contains(&p.role) {
                    Ok($name(p))
                } else {
                    Err(ApiError::Forbidden(concat!("only ", $what, " may do this").into()))
                }
            }
        }
    };
}

role_extractor!(
    /// The city's office: may do everything.
    Admin,
    [Role::Admin],
    "admins"
);
role_extractor!(
    /// Someone who manages an area: a supervisor (in their subtree) or an admin.
    Supervisor,
    [Role::Supervisor, Role::Admin],
    "supervisors and admins"
);
role_extractor!(
    /// A peer educator or volunteer: someone who submits field forms.
    FieldWorker,
    [Role::PeerEducator, Role::Volunteer],
    "peer educators and volunteers"
);
