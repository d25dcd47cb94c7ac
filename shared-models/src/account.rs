//! Users, login and tokens.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use validator::Validate;

use crate::Role;

/// `POST /api/v1/auth/login`.
#[derive(Debug, Clone, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginIn {
    #[validate(length(min = 1, max = 64))]
    pub username: String,
    #[validate(length(min = 1, max = 1024))]
    pub password: String,
    /// A stable id of the phone (or browser); refresh tokens are bound to it.
    #[validate(length(min = 1, max = 128))]
    pub device_id: Option<String>,
}

/// `POST /api/v1/auth/refresh` and `POST /api/v1/auth/logout`.
#[derive(Debug, Clone, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshIn {
    #[validate(length(min = 1, max = 256))]
    pub refresh_token: String,
}

/// A new access token and refresh token.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct TokenPairOut {
    /// A short-lived JWT for `Authorization: Bearer …`.
    pub access_token: String,
    /// An opaque, long-lived token for `POST /api/v1/auth/refresh`; single use.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// When the refresh token expires.
    pub refresh_expires_at: DateTime<Utc>,
    pub user: UserOut,
}

/// A user account as the API shows it (never the password hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UserOut {
    pub id: Uuid,
    pub username: String,
    pub role: Role,
    pub org_unit_id: Uuid,
    pub team_id: Option<Uuid>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `GET /api/v1/me`: the caller's profile with their org unit spelled out.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MeOut {
    pub user: UserOut,
    pub org_unit: crate::OrgUnitOut,
}

/// Creates a user (admin; supervisors for field roles inside their subtree).
#[derive(Debug, Clone, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserIn {
    /// 3 to 64 characters: lowercase letters, digits, `.`, `_`, `-`. Not a person's name.
    #[validate(
        length(min = 3, max = 64),
        custom(function = "crate::account::validate_username")
    )]
    pub username: String,
    /// At least 10 characters.
    #[validate(length(min = 10, max = 1024))]
    pub password: String,
    pub role: Role,
    pub org_unit_id: Uuid,
    pub team_id: Option<Uuid>,
}

/// Edits a user; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[validate(length(min = 10, max = 1024))]
    pub password: Option<String>,
    /// The password in use now: required with `password` when users change their own
    /// (a wrong one counts as a failed login); not asked when someone who manages the
    /// user sets it.
    #[validate(length(max = 1024))]
    pub current_password: Option<String>,
    pub role: Option<Role>,
    pub org_unit_id: Option<Uuid>,
    /// `null` takes the user out of their team.
    #[serde(default, with = "crate::org_unit::double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub team_id: Option<Option<Uuid>>,
    /// `false` deactivates the user and revokes all their tokens at once.
    pub active: Option<bool>,
}

/// Filters for `GET /api/v1/users`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UserFilter {
    pub role: Option<Role>,
    /// Users of this unit and its subtree.
    pub org_unit_id: Option<Uuid>,
    pub active: Option<bool>,
    pub cursor: Option<String>,
    pub limit: Option<u64>,
}

/// Usernames are handles, not names: lowercase ASCII letters, digits, `.`, `_`, `-`.
pub fn validate_username(name: &str) -> Result<(), validator::ValidationError> {
    if name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
    {
        Ok(())
    } else {
        let mut e = validator::ValidationError::new("bad_username");
        e.message =
            Some("only lowercase ASCII letters, digits, '.', '_' and '-' are allowed".into());
        Err(e)
    }
}

/// `POST /api/v1/users/{id}/devices`: enrol a phone for a field worker.
#[derive(Debug, Clone, Default, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceIn {
    /// What the supervisor calls the phone ("Lan's Samsung"); never a person's full name.
    #[validate(length(min = 1, max = 100))]
    pub label: Option<String>,
}

/// An enrolled phone, as its worker's supervisor sees it (no secrets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeviceOut {
    /// Also the `device_id` its sessions are bound to, and the one to revoke.
    pub device_id: Uuid,
    pub user_id: Uuid,
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Last time the phone used the OpenRosa address or its sign-in code.
    pub last_seen_at: Option<DateTime<Utc>>,
}

/// What an enrolment answers, once: the secrets in it are not stored and cannot be
/// shown again (enrol a new phone if they are lost).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeviceEnrolmentOut {
    #[serde(flatten)]
    pub device: DeviceOut,
    /// The OpenRosa server address for ODK Collect; it carries the device's token.
    pub odk_server_url: String,
    /// ODK Collect's settings (server address, project, username, Vietnamese).
    #[schema(value_type = Object)]
    pub odk_settings: serde_json::Value,
    /// Those settings as Collect's "scan QR code" reads them: zlib-compressed JSON,
    /// base64, drawn as a QR code in a PNG (itself base64 here).
    pub odk_settings_qr_png: String,
    /// The same payload as text (what the QR code holds).
    pub odk_settings_payload: String,
    /// A one-time code the JSON app exchanges for tokens (`POST /api/v1/auth/enrol`).
    pub sign_in_code: String,
    pub sign_in_code_expires_at: DateTime<Utc>,
}

/// `POST /api/v1/auth/enrol`: exchange a phone's one-time sign-in code for tokens.
#[derive(Debug, Clone, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolIn {
    #[validate(length(min = 1, max = 64))]
    pub code: String,
}
