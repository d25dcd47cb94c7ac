//! Phones enrolled by a supervisor. An enrolment makes a device for a field worker with
//! two secrets, handed out once and kept only as SHA-256:
//!
//! - a long random **token**, carried in the OpenRosa address ODK Collect is set up with
//!   (`{origin}/odk/{token}`, shown as Collect's settings QR code), so nobody types a
//!   password in the field;
//! - a one-time **sign-in code** the JSON app exchanges for the usual access and refresh
//!   tokens (bound to the device, so revoking it ends them too).
//!
//! Revoking the device (`DELETE /api/v1/users/{id}/devices/{device_id}`) or deactivating
//! its worker cuts the phone off on its very next request: every OpenRosa request reads
//! the device and the user.

use std::io::Write;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use rand::{Rng, RngCore};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
};
use serde_json::json;
use sha2::{Digest, Sha256};
use shared_models::{DeviceEnrolmentOut, DeviceIn, DeviceOut, Role, TokenPairOut};
use uuid::Uuid;

use crate::auth::Principal;
use crate::db::entities::{devices, org_units, users};
use crate::error::{ApiError, ApiResult};
use crate::services::accounts::{check_may_manage_role, scoped_user};
use crate::services::{audit, sessions};
use crate::state::AppState;

/// How long a sign-in code may wait to be used.
pub const SIGN_IN_CODE_TTL: Duration = Duration::hours(24);

/// The path prefix of every OpenRosa address.
pub const OPENROSA_PREFIX: &str = "/odk";

/// Letters and digits nobody misreads when typing a code from a screen (no I, O, 0, 1).
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// The SHA-256 (hex) under which a device secret is kept.
fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new device token: 32 random bytes, URL-safe base64 (43 characters).
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A new sign-in code, `XXXX-XXXX-XXXX` (60 random bits).
fn new_sign_in_code() -> String {
    let mut rng = rand::rngs::OsRng;
    let mut code = String::with_capacity(14);
    for i in 0..12 {
        if i > 0 && i % 4 == 0 {
            code.push('-');
        }
        code.push(char::from(
            CODE_ALPHABET[rng.gen_range(0..CODE_ALPHABET.len())],
        ));
    }
    code
}

/// A sign-in code as typed: case and separators do not matter.
fn normalize_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

impl From<devices::Model> for DeviceOut {
    fn from(d: devices::Model) -> Self {
        DeviceOut {
            device_id: d.id,
            user_id: d.user_id,
            label: d.label,
            created_at: d.created_at,
            revoked_at: d.revoked_at,
            last_seen_at: d.last_seen_at,
        }
    }
}

/// The field worker `user_id` as a supervisor in scope (or an admin) may manage them.
async fn managed_field_worker<C: ConnectionTrait>(
    db: &C,
    actor: &Principal,
    user_id: Uuid,
) -> ApiResult<(users::Model, org_units::Model)> {
    let (user, unit) = scoped_user(db, &actor.scope(), user_id).await?;
    let role = Role::parse(&user.role)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("user {} has unknown role", user.id)))?;
    check_may_manage_role(actor, role)?;
    if !role.is_field() {
        return Err(ApiError::invalid(
            "id",
            "not_a_field_worker",
            "phones are enrolled for peer educators and volunteers",
        ));
    }
    Ok((user, unit))
}

/// The OpenRosa address of a device token under `origin` (`https://host`).
pub fn odk_server_url(origin: &str, token: &str) -> String {
    format!("{origin}{OPENROSA_PREFIX}/{token}")
}

/// ODK Collect's settings for a phone: the server address, a project named after the
/// worker's unit, the username, Vietnamese, forms kept as the server lists them, and
/// the server address locked (it carries the token).
pub fn odk_settings(server_url: &str, username: &str, unit_name: &str) -> serde_json::Value {
    json!({
        "general": {
            "server_url": server_url,
            "username": username,
            "metadata_username": username,
            "app_language": "vi",
            "form_update_mode": "match_exactly",
            "autosend": "wifi_and_cellular",
        },
        "admin": {
            "change_server": false,
        },
        "project": {
            "name": format!("Đồng Hành · {unit_name}"),
            "icon": "Đ",
            "color": "#2e7d32",
        },
    })
}

/// Collect's QR payload for settings: the JSON, zlib-compressed, standard base64.
pub fn settings_payload(settings: &serde_json::Value) -> ApiResult<String> {
    let json = serde_json::to_vec(settings).map_err(|e| ApiError::Internal(e.into()))?;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&json)
        .map_err(|e| ApiError::Internal(e.into()))?;
    let compressed = z.finish().map_err(|e| ApiError::Internal(e.into()))?;
    Ok(STANDARD.encode(compressed))
}

/// `payload` drawn as a QR code (error correction L, as Collect draws its own), 8 pixels
/// a module with the usual 4-module quiet zone, as a greyscale PNG.
pub fn qr_png(payload: &str) -> ApiResult<Vec<u8>> {
    let code = qrcode::QrCode::with_error_correction_level(payload.as_bytes(), qrcode::EcLevel::L)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("QR code: {e}")))?;
    let modules = code.width();
    let colors = code.to_colors();
    const SCALE: usize = 8;
    const QUIET: usize = 4;
    let side = (modules + 2 * QUIET) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for (i, color) in colors.iter().enumerate() {
        if *color != qrcode::Color::Dark {
            continue;
        }
        let (mx, my) = (i % modules + QUIET, i / modules + QUIET);
        for y in my * SCALE..(my + 1) * SCALE {
            pixels[y * side + mx * SCALE..y * side + (mx + 1) * SCALE].fill(0);
        }
    }
    let mut png_bytes = Vec::new();
    {
        let side = u32::try_from(side).map_err(|e| ApiError::Internal(e.into()))?;
        let mut encoder = png::Encoder::new(&mut png_bytes, side, side);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .map_err(|e| ApiError::Internal(e.into()))?;
        writer
            .write_image_data(&pixels)
            .map_err(|e| ApiError::Internal(e.into()))?;
    }
    Ok(png_bytes)
}

/// Enrols a phone for a field worker in the caller's scope. `origin` is the public
/// address of this server (`https://host`), for the OpenRosa address.
pub async fn enrol(
    state: &AppState,
    actor: &Principal,
    user_id: Uuid,
    input: DeviceIn,
    origin: &str,
) -> ApiResult<DeviceEnrolmentOut> {
    let (user, unit) = managed_field_worker(&state.db, actor, user_id).await?;
    if !user.active {
        return Err(ApiError::invalid(
            "id",
            "deactivated",
            "this account is deactivated; reactivate it before enrolling a phone",
        ));
    }
    let token = new_token();
    let code = new_sign_in_code();
    let now = Utc::now();
    let expires = now + SIGN_IN_CODE_TTL;
    let device = devices::Model {
        id: Uuid::now_v7(),
        user_id: user.id,
        label: input.label.clone(),
        token_hash: secret_hash(&token),
        enrol_code_hash: Some(secret_hash(&normalize_code(&code))),
        enrol_code_expires_at: Some(expires),
        enrol_code_used_at: None,
        created_by: actor.user_id,
        created_at: now,
        revoked_at: None,
        last_seen_at: None,
    };
    let txn = state.db.begin().await?;
    devices::Entity::insert(devices::ActiveModel::from(device.clone()))
        .exec_without_returning(&txn)
        .await?;
    audit::record(
        &txn,
        Some(actor.user_id),
        "device.enrol",
        "user",
        Some(user.id.to_string()),
        json!({ "device_id": device.id }),
    )
    .await?;
    txn.commit().await?;
    let server_url = odk_server_url(origin, &token);
    let settings = odk_settings(&server_url, &user.username, &unit.name);
    let payload = settings_payload(&settings)?;
    let png = qr_png(&payload)?;
    tracing::info!(device.id = %device.id, user.id = %user.id, "device enrolled");
    Ok(DeviceEnrolmentOut {
        device: device.into(),
        odk_server_url: server_url,
        odk_settings: settings,
        odk_settings_qr_png: STANDARD.encode(png),
        odk_settings_payload: payload,
        sign_in_code: code,
        sign_in_code_expires_at: expires,
    })
}

/// The phones of a field worker in the caller's scope, newest first.
pub async fn list(state: &AppState, actor: &Principal, user_id: Uuid) -> ApiResult<Vec<DeviceOut>> {
    managed_field_worker(&state.db, actor, user_id).await?;
    Ok(devices::Entity::find()
        .filter(devices::Column::UserId.eq(user_id))
        .order_by_desc(devices::Column::CreatedAt)
        .all(&state.db)
        .await?
        .into_iter()
        .map(DeviceOut::from)
        .collect())
}

/// Marks an enrolled device revoked (its OpenRosa address and sign-in code stop
/// working); answers whether there was one to revoke. Sessions are revoked by the caller.
pub async fn revoke<C: ConnectionTrait>(db: &C, user_id: Uuid, device_id: &str) -> ApiResult<bool> {
    let Ok(id) = Uuid::parse_str(device_id) else {
        return Ok(false);
    };
    let revoked = devices::Entity::update_many()
        .col_expr(devices::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(devices::Column::Id.eq(id))
        .filter(devices::Column::UserId.eq(user_id))
        .filter(devices::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(revoked.rows_affected > 0)
}

/// A device that may act, and its worker.
#[derive(Debug, Clone)]
pub struct EnrolledDevice {
    pub device: devices::Model,
    pub principal: Principal,
}

/// Why an OpenRosa token was refused (all of them answer the same to the caller).
const TOKEN_REFUSED: &str =
    "this phone's address is unknown or was revoked; ask your supervisor to enrol it again";

/// The device an OpenRosa token names, if it is live and its worker active; every
/// request reads both, so a revocation or a deactivation holds at once.
pub async fn authenticate(state: &AppState, token: &str) -> ApiResult<EnrolledDevice> {
    // Tokens are 43 URL-safe characters; anything else is refused without a query.
    if token.len() != 43
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ApiError::Forbidden(TOKEN_REFUSED.into()));
    }
    let found = devices::Entity::find()
        .filter(devices::Column::TokenHash.eq(secret_hash(token)))
        .find_also_related(users::Entity)
        .one(&state.db)
        .await?;
    let (device, Some(user)) = found.ok_or_else(|| ApiError::Forbidden(TOKEN_REFUSED.into()))?
    else {
        return Err(ApiError::Forbidden(TOKEN_REFUSED.into()));
    };
    if device.revoked_at.is_some() || !user.active {
        return Err(ApiError::Forbidden(TOKEN_REFUSED.into()));
    }
    let unit = org_units::Entity::find_by_id(user.org_unit_id)
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("user {} has no org unit", user.id)))?;
    let role = Role::parse(&user.role)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("user {} has unknown role", user.id)))?;
    tracing::Span::current().record("user.id", tracing::field::display(user.id));
    Ok(EnrolledDevice {
        principal: Principal {
            user_id: user.id,
            username: user.username,
            role,
            org_unit_id: unit.id,
            org_unit_path: unit.path,
        },
        device,
    })
}

/// Notes that a device was used, at most once an hour (it is a write).
pub async fn touch(state: &AppState, device: &devices::Model) -> ApiResult<()> {
    let now = Utc::now();
    if device
        .last_seen_at
        .is_some_and(|seen| now - seen < Duration::hours(1))
    {
        return Ok(());
    }
    devices::Entity::update_many()
        .col_expr(devices::Column::LastSeenAt, Expr::value(now))
        .filter(devices::Column::Id.eq(device.id))
        .exec(&state.db)
        .await?;
    Ok(())
}

/// Exchanges a one-time sign-in code for a session bound to its device. Wrong codes
/// count against the client's address like failed logins.
pub async fn sign_in(
    state: &AppState,
    code: &str,
    addr: Option<std::net::IpAddr>,
    now: DateTime<Utc>,
) -> ApiResult<TokenPairOut> {
    let addr_key = sessions::check_address(state, addr).await?;
    match exchange(state, code, now).await {
        Err(e @ ApiError::Unauthorized(_)) => {
            sessions::record_failures(state, addr_key.into_iter().collect(), now).await?;
            Err(e)
        }
        other => other,
    }
}

async fn exchange(state: &AppState, code: &str, now: DateTime<Utc>) -> ApiResult<TokenPairOut> {
    const REFUSED: ApiError =
        ApiError::Unauthorized("invalid, expired or already used sign-in code");
    let hash = secret_hash(&normalize_code(code));
    let (device, user) = match devices::Entity::find()
        .filter(devices::Column::EnrolCodeHash.eq(hash.as_str()))
        .find_also_related(users::Entity)
        .one(&state.db)
        .await?
    {
        Some((device, Some(user))) => (device, user),
        _ => return Err(REFUSED),
    };
    let live = device.revoked_at.is_none()
        && device.enrol_code_used_at.is_none()
        && device.enrol_code_expires_at.is_some_and(|t| t > now)
        && user.active;
    if !live {
        return Err(REFUSED);
    }
    let txn = state.db.begin().await?;
    // Spend the code first: of two concurrent exchanges, one wins.
    let spent = devices::Entity::update_many()
        .col_expr(devices::Column::EnrolCodeUsedAt, Expr::value(now))
        .col_expr(devices::Column::LastSeenAt, Expr::value(now))
        .filter(devices::Column::Id.eq(device.id))
        .filter(devices::Column::EnrolCodeUsedAt.is_null())
        .exec(&txn)
        .await?;
    if spent.rows_affected != 1 {
        txn.rollback().await?;
        return Err(REFUSED);
    }
    let pair = sessions::open_session(
        state,
        &txn,
        &user,
        Uuid::now_v7(),
        &device.id.to_string(),
        now,
    )
    .await?;
    audit::record(
        &txn,
        Some(user.id),
        "device.sign_in",
        "user",
        Some(user.id.to_string()),
        json!({ "device_id": device.id }),
    )
    .await?;
    txn.commit().await?;
    Ok(pair)
}
