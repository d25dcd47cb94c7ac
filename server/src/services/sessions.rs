//! Login, refresh-token rotation and logout. Failed logins are counted in the database
//! (so throttling holds across server instances) twice: per username, against guessing
//! one account's password, and per source address, against a flood of random usernames
//! that no per-username count sees. A refresh token presented a second time revokes its
//! whole family, because one of the two holders is a thief.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use hmac::{Hmac, Mac};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use sha2::{Digest, Sha256};
use shared_models::{LoginIn, Role, TokenPairOut};
use std::net::IpAddr;
use uuid::Uuid;

use crate::auth::tokens::{hash_refresh_token, new_refresh_token};
use crate::db::entities::{login_failures, refresh_tokens, users};
use crate::error::{ApiError, ApiResult};
use crate::services::accounts::user_out;
use crate::state::AppState;

const BAD_CREDENTIALS: ApiError = ApiError::Unauthorized("invalid username or password");
const BAD_REFRESH: ApiError = ApiError::Unauthorized("invalid, expired or revoked refresh token");

/// The device id recorded when a client does not name one.
const UNNAMED_DEVICE: &str = "unnamed-device";

fn username_key(username: &str) -> String {
    hex::encode(Sha256::digest(username.trim().to_lowercase().as_bytes()))
}

/// The throttle key of a source address: keyed (HMAC under the UIC key), because an
/// IPv4 address hashed plainly is found again by trying all of them.
fn address_key(state: &AppState, addr: IpAddr) -> ApiResult<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(state.config.uic_hmac_key.expose())
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("address key: {e}")))?;
    mac.update(b"login-address:");
    mac.update(addr.to_string().as_bytes());
    // 64 hex characters like a username's key; keyed, so the two never meet.
    Ok(hex::encode(mac.finalize().into_bytes()))
}

/// 429 when `key` has `max` failures or more since `since`, with the seconds until the
/// oldest of them leaves the window.
async fn check_throttle(
    state: &AppState,
    key: &str,
    max: u32,
    since: DateTime<Utc>,
    window: ChronoDuration,
    what: &str,
) -> ApiResult<()> {
    let recent = login_failures::Entity::find()
        .filter(login_failures::Column::UsernameKey.eq(key))
        .filter(login_failures::Column::At.gt(since))
        .order_by_asc(login_failures::Column::At)
        .limit(u64::from(max))
        .all(&state.db)
        .await?;
    if recent.len() as u32 >= max {
        let now = Utc::now();
        let oldest = recent.first().map(|f| f.at).unwrap_or(now);
        let retry = (oldest + window - now).num_seconds().max(1) as u64;
        return Err(ApiError::TooManyRequests {
            retry_after_secs: retry,
            detail: format!("too many failed logins {what}; try again later"),
        });
    }
    Ok(())
}

/// 429 when the client's address has too many recent failures; answers the address's
/// throttle key, for recording a failure.
pub(crate) async fn check_address(
    state: &AppState,
    addr: Option<IpAddr>,
) -> ApiResult<Option<String>> {
    let Some(addr) = addr else { return Ok(None) };
    let key = address_key(state, addr)?;
    let window = ChronoDuration::from_std(state.config.login_window)
        .map_err(|e| ApiError::Internal(e.into()))?;
    let max = state.config.login_max_failures_per_address;
    let since = Utc::now() - window;
    check_throttle(state, &key, max, since, window, "from this address").await?;
    Ok(Some(key))
}

/// 429 when the username has too many recent failures; answers its throttle key, for
/// recording a failure or clearing them.
async fn check_username(state: &AppState, username: &str) -> ApiResult<String> {
    let key = username_key(username);
    let window = ChronoDuration::from_std(state.config.login_window)
        .map_err(|e| ApiError::Internal(e.into()))?;
    let max = state.config.login_max_failures;
    let since = Utc::now() - window;
    check_throttle(state, &key, max, since, window, "for this username").await?;
    Ok(key)
}

/// Records one failure under each throttle key, and forgets failures past the window
/// whoever they were for (random usernames would otherwise pile up).
pub(crate) async fn record_failures(
    state: &AppState,
    keys: Vec<String>,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let window = ChronoDuration::from_std(state.config.login_window)
        .map_err(|e| ApiError::Internal(e.into()))?;
    login_failures::Entity::insert_many(keys.into_iter().map(|key| login_failures::ActiveModel {
        id: Set(Uuid::now_v7()),
        username_key: Set(key),
        at: Set(now),
    }))
    .exec(&state.db)
    .await?;
    login_failures::Entity::delete_many()
        .filter(login_failures::Column::At.lte(now - window))
        .exec(&state.db)
        .await?;
    Ok(())
}

/// Checks a username and password, with the throttles: failures count per username
/// and per client address, success clears the username's. The same for the API's
/// login and the console's sign-in.
pub(crate) async fn check_credentials(
    state: &AppState,
    username: &str,
    password: String,
    addr: Option<IpAddr>,
) -> ApiResult<users::Model> {
    let now = Utc::now();
    let key = check_username(state, username).await?;
    let addr_key = check_address(state, addr).await?;

    let user = users::Entity::find()
        .filter(users::Column::Username.eq(username.trim().to_lowercase()))
        .one(&state.db)
        .await?;
    // Unknown users are checked against a dummy hash: same work, same answer.
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let matches = state.passwords.verify(password, hash).await?;
    let user = match user {
        Some(u) if matches && u.active => u,
        _ => {
            let keys = std::iter::once(key.clone()).chain(addr_key).collect();
            record_failures(state, keys, now).await?;
            return Err(BAD_CREDENTIALS);
        }
    };
    login_failures::Entity::delete_many()
        .filter(login_failures::Column::UsernameKey.eq(key.as_str()))
        .exec(&state.db)
        .await?;
    Ok(user)
}

/// Checks the password a signed-in user gives as their current one (to change it):
/// a wrong one counts as a failed login for their username, under the same throttle,
/// so a stolen access token does not open a faster way to guess the password.
pub(crate) async fn check_current_password(
    state: &AppState,
    user: &users::Model,
    password: String,
) -> ApiResult<()> {
    let key = check_username(state, &user.username).await?;
    if state
        .passwords
        .verify(password, Some(user.password_hash.clone()))
        .await?
    {
        return Ok(());
    }
    record_failures(state, vec![key], Utc::now()).await?;
    Err(ApiError::invalid(
        "current_password",
        "wrong_password",
        "this is not your current password",
    ))
}

/// Checks credentials and opens a new session (token family) on the named device.
/// `addr` is the client's address when known (see `ClientAddr`).
pub async fn login(
    state: &AppState,
    input: LoginIn,
    addr: Option<IpAddr>,
) -> ApiResult<TokenPairOut> {
    let now = Utc::now();
    let user = check_credentials(state, &input.username, input.password, addr).await?;
    let device_id = input
        .device_id
        .unwrap_or_else(|| UNNAMED_DEVICE.to_string());
    let txn = state.db.begin().await?;
    let pair = open_session(state, &txn, &user, Uuid::now_v7(), &device_id, now).await?;
    txn.commit().await?;
    tracing::info!(user.id = %user.id, "login");
    Ok(pair)
}

/// Rotates a refresh token: the presented one is spent, a new one of the same family is issued.
pub async fn refresh(state: &AppState, token: &str) -> ApiResult<TokenPairOut> {
    let now = Utc::now();
    let row = refresh_tokens::Entity::find()
        .filter(refresh_tokens::Column::TokenHash.eq(hash_refresh_token(token)))
        .one(&state.db)
        .await?
        .ok_or(BAD_REFRESH)?;
    if row.revoked_at.is_some() {
        return Err(BAD_REFRESH);
    }
    if row.used_at.is_some() {
        revoke_family(&state.db, row.family_id, now).await?;
        tracing::warn!(user.id = %row.user_id, "refresh token reused; session family revoked");
        return Err(ApiError::Unauthorized(
            "refresh token already used; this session has been revoked",
        ));
    }
    if row.expires_at <= now {
        return Err(BAD_REFRESH);
    }
    let user = users::Entity::find_by_id(row.user_id)
        .one(&state.db)
        .await?
        .filter(|u| u.active)
        .ok_or(BAD_REFRESH)?;

    let txn = state.db.begin().await?;
    let spent = refresh_tokens::Entity::update_many()
        .col_expr(refresh_tokens::Column::UsedAt, Expr::value(now))
        .filter(refresh_tokens::Column::Id.eq(row.id))
        .filter(refresh_tokens::Column::UsedAt.is_null())
        .filter(refresh_tokens::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?;
    if spent.rows_affected != 1 {
        // Someone presented the same token at the same moment: treat it as reuse.
        txn.rollback().await?;
        revoke_family(&state.db, row.family_id, now).await?;
        return Err(ApiError::Unauthorized(
            "refresh token already used; this session has been revoked",
        ));
    }
    let pair = open_session(state, &txn, &user, row.family_id, &row.device_id, now).await?;
    txn.commit().await?;
    Ok(pair)
}

/// Ends the session the refresh token belongs to.
pub async fn logout(state: &AppState, token: &str) -> ApiResult<()> {
    let row = refresh_tokens::Entity::find()
        .filter(refresh_tokens::Column::TokenHash.eq(hash_refresh_token(token)))
        .one(&state.db)
        .await?
        .ok_or(BAD_REFRESH)?;
    revoke_family(&state.db, row.family_id, Utc::now()).await?;
    Ok(())
}

/// Revokes every live token of a family.
async fn revoke_family<C: ConnectionTrait>(
    db: &C,
    family_id: Uuid,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    refresh_tokens::Entity::update_many()
        .col_expr(refresh_tokens::Column::RevokedAt, Expr::value(now))
        .filter(refresh_tokens::Column::FamilyId.eq(family_id))
        .filter(refresh_tokens::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Revokes every live refresh token of a user, or only those of one device.
pub async fn revoke_user_tokens<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    device_id: Option<&str>,
) -> ApiResult<u64> {
    let mut update = refresh_tokens::Entity::update_many()
        .col_expr(refresh_tokens::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(refresh_tokens::Column::UserId.eq(user_id))
        .filter(refresh_tokens::Column::RevokedAt.is_null());
    if let Some(device) = device_id {
        update = update.filter(refresh_tokens::Column::DeviceId.eq(device));
    }
    Ok(update.exec(db).await?.rows_affected)
}

/// How many live sessions a user has (for tests and the admin view).
pub async fn live_sessions<C: ConnectionTrait>(db: &C, user_id: Uuid) -> ApiResult<u64> {
    Ok(refresh_tokens::Entity::find()
        .filter(refresh_tokens::Column::UserId.eq(user_id))
        .filter(refresh_tokens::Column::RevokedAt.is_null())
        .filter(refresh_tokens::Column::UsedAt.is_null())
        .count(db)
        .await?)
}

/// Opens a session (a refresh-token family) for `user` on `device_id`.
pub(crate) async fn open_session<C: ConnectionTrait>(
    state: &AppState,
    db: &C,
    user: &users::Model,
    family_id: Uuid,
    device_id: &str,
    now: DateTime<Utc>,
) -> ApiResult<TokenPairOut> {
    let ttl = ChronoDuration::from_std(state.config.refresh_token_ttl)
        .map_err(|e| ApiError::Internal(e.into()))?;
    let (token, hash) = new_refresh_token();
    let expires_at = now + ttl;
    refresh_tokens::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user.id),
        family_id: Set(family_id),
        token_hash: Set(hash),
        device_id: Set(device_id.to_string()),
        created_at: Set(now),
        expires_at: Set(expires_at),
        used_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(db)
    .await?;
    let out = user_out(user.clone())?;
    let role: Role = out.role;
    let access_token = state.tokens.issue_access(user.id, role, user.org_unit_id)?;
    Ok(TokenPairOut {
        access_token,
        refresh_token: token,
        token_type: "Bearer".into(),
        expires_in: state.tokens.access_ttl_secs(),
        refresh_expires_at: expires_at,
        user: out,
    })
}
