//! Browser sessions of the console. Signing in checks the password exactly as the API's
//! login does (same throttles per username and per address) and admits supervisors and
//! admins only. The browser holds an opaque random token in an `HttpOnly` cookie; the
//! database keeps its SHA-256. A session ends by signing out, after the idle timeout
//! (`CONSOLE_IDLE_TIMEOUT_MINS`), or when its user is deactivated: every request reads
//! the session and the user.
//!
//! Each session has a CSRF token derived from it (HMAC under the server's key), which
//! every state-changing form must carry.

use std::net::IpAddr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{Duration, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use sha2::{Digest, Sha256};
use shared_models::Role;
use uuid::Uuid;

use crate::auth::Principal;
use crate::db::entities::{console_sessions, org_units, users};
use crate::error::{ApiError, ApiResult};
use crate::services::{audit, sessions};
use crate::state::AppState;

/// A live console session and who it is.
#[derive(Debug, Clone)]
pub struct WebSession {
    pub id: Uuid,
    pub principal: Principal,
    /// What every state-changing form of this session carries.
    pub csrf: String,
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The CSRF token of the session whose cookie token hashes to `hash`.
fn csrf_of(state: &AppState, hash: &str) -> ApiResult<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(state.config.uic_hmac_key.expose())
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("HMAC key: {e}")))?;
    mac.update(b"console-csrf:");
    mac.update(hash.as_bytes());
    Ok(URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

/// A random token for a form that has no session yet (the sign-in form).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs in with a username and password; answers the cookie's token. Field workers
/// are refused: they use phones.
pub async fn sign_in(
    state: &AppState,
    username: &str,
    password: String,
    addr: Option<IpAddr>,
) -> ApiResult<String> {
    let user = sessions::check_credentials(state, username, password, addr).await?;
    let role = Role::parse(&user.role)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("user {} has unknown role", user.id)))?;
    if !matches!(role, Role::Supervisor | Role::Admin) {
        return Err(ApiError::Forbidden(
            "the console is for supervisors and admins; field workers use their phones".into(),
        ));
    }
    let token = random_token();
    let now = Utc::now();
    console_sessions::Entity::insert(console_sessions::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user.id),
        token_hash: Set(token_hash(&token)),
        created_at: Set(now),
        last_seen_at: Set(now),
        ended_at: Set(None),
    })
    .exec_without_returning(&state.db)
    .await?;
    audit::record(
        &state.db,
        Some(user.id),
        "console.sign_in",
        "user",
        Some(user.id.to_string()),
        serde_json::json!({}),
    )
    .await?;
    tracing::info!(user.id = %user.id, "console sign-in");
    Ok(token)
}

/// The live session a cookie token names: not ended, used within the idle timeout, its
/// user active and still a supervisor or admin. Refreshes its last use (at most once a
/// minute: it is a write).
pub async fn lookup(state: &AppState, token: &str) -> ApiResult<Option<WebSession>> {
    if token.is_empty() || token.len() > 64 {
        return Ok(None);
    }
    let hash = token_hash(token);
    let Some(session) = console_sessions::Entity::find()
        .filter(console_sessions::Column::TokenHash.eq(hash.as_str()))
        .one(&state.db)
        .await?
    else {
        return Ok(None);
    };
    let now = Utc::now();
    let idle = Duration::from_std(state.config.console_idle_timeout)
        .map_err(|e| ApiError::Internal(e.into()))?;
    if session.ended_at.is_some() || now - session.last_seen_at > idle {
        return Ok(None);
    }
    let Some((user, Some(unit))) = users::Entity::find_by_id(session.user_id)
        .find_also_related(org_units::Entity)
        .one(&state.db)
        .await?
    else {
        return Ok(None);
    };
    let role = Role::parse(&user.role);
    if !user.active || !matches!(role, Some(Role::Supervisor | Role::Admin)) {
        return Ok(None);
    }
    if now - session.last_seen_at > Duration::minutes(1) {
        console_sessions::Entity::update_many()
            .col_expr(console_sessions::Column::LastSeenAt, Expr::value(now))
            .filter(console_sessions::Column::Id.eq(session.id))
            .exec(&state.db)
            .await?;
    }
    tracing::Span::current().record("user.id", tracing::field::display(user.id));
    Ok(Some(WebSession {
        id: session.id,
        csrf: csrf_of(state, &hash)?,
        principal: Principal {
            user_id: user.id,
            username: user.username,
            role: role.unwrap_or(Role::Supervisor),
            org_unit_id: unit.id,
            org_unit_path: unit.path,
        },
    }))
}

/// Ends every console session of `user_id` (a password reset by someone else, a
/// deactivation), in the caller's transaction; answers how many were live.
pub async fn end_user_sessions<C: ConnectionTrait>(db: &C, user_id: Uuid) -> ApiResult<u64> {
    Ok(console_sessions::Entity::update_many()
        .col_expr(console_sessions::Column::EndedAt, Expr::value(Utc::now()))
        .filter(console_sessions::Column::UserId.eq(user_id))
        .filter(console_sessions::Column::EndedAt.is_null())
        .exec(db)
        .await?
        .rows_affected)
}

/// Ends a session (signing out).
pub async fn sign_out(state: &AppState, session_id: Uuid) -> ApiResult<()> {
    console_sessions::Entity::update_many()
        .col_expr(console_sessions::Column::EndedAt, Expr::value(Utc::now()))
        .filter(console_sessions::Column::Id.eq(session_id))
        .filter(console_sessions::Column::EndedAt.is_null())
        .exec(&state.db)
        .await?;
    Ok(())
}
