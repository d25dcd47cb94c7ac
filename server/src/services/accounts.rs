//! User accounts: created, listed, edited and deactivated by admins anywhere and by
//! supervisors for the field workers of their own subtree. Deactivating a user or
//! resetting their password revokes every refresh token and ends every console session
//! they hold, in the same transaction; the access-token check re-reads the user, so the
//! cut is immediate.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde_json::json;
use shared_models::{MeOut, Page, Role, UserFilter, UserIn, UserOut, UserPatch};
use uuid::Uuid;

use crate::auth::passwords::random_password;
use crate::auth::Principal;
use crate::db::entities::{org_units, teams, users};
use crate::db::scope::Scope;
use crate::error::{ApiError, ApiResult};
use crate::paging::PageRequest;
use crate::services::org_units::org_unit_out;
use crate::services::{audit, sessions};
use crate::state::AppState;

/// The wire form of a user row.
pub fn user_out(m: users::Model) -> ApiResult<UserOut> {
    let role = Role::parse(&m.role)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("user {} has unknown role", m.id)))?;
    Ok(UserOut {
        id: m.id,
        username: m.username,
        role,
        org_unit_id: m.org_unit_id,
        team_id: m.team_id,
        active: m.active,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

/// The caller's own profile.
pub async fn me(state: &AppState, p: &Principal) -> ApiResult<MeOut> {
    let (user, unit) = users::Entity::find_by_id(p.user_id)
        .find_also_related(org_units::Entity)
        .one(&state.db)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    let unit = unit.ok_or(ApiError::NotFound("org unit"))?;
    Ok(MeOut {
        user: user_out(user)?,
        org_unit: org_unit_out(unit),
    })
}

/// Loads a user inside the caller's scope; 404 when absent or outside it.
pub(crate) async fn scoped_user<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    id: Uuid,
) -> ApiResult<(users::Model, org_units::Model)> {
    match users::Entity::find_by_id(id)
        .find_also_related(org_units::Entity)
        .one(db)
        .await?
    {
        Some((user, Some(unit))) if scope.contains_path(&unit.path) => Ok((user, unit)),
        _ => Err(ApiError::NotFound("user")),
    }
}

/// A team given for a user must exist in scope and hang under the user's org unit.
async fn check_team<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    team_id: Uuid,
    org_unit_id: Uuid,
) -> ApiResult<()> {
    let team = teams::Entity::find_by_id(team_id)
        .find_also_related(org_units::Entity)
        .one(db)
        .await?;
    match team {
        Some((team, Some(unit))) if scope.contains_path(&unit.path) => {
            if team.org_unit_id == org_unit_id {
                Ok(())
            } else {
                Err(ApiError::invalid(
                    "team_id",
                    "team_not_in_org_unit",
                    "the team belongs to another org unit",
                ))
            }
        }
        _ => Err(ApiError::invalid("team_id", "not_found", "no such team")),
    }
}

pub(crate) fn check_may_manage_role(actor: &Principal, role: Role) -> ApiResult<()> {
    if actor.role == Role::Admin || role.is_field() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "supervisors manage peer educators and volunteers only".into(),
        ))
    }
}

/// Creates a user in the caller's scope.
pub async fn create_user(state: &AppState, actor: &Principal, input: UserIn) -> ApiResult<UserOut> {
    check_may_manage_role(actor, input.role)?;
    let scope = actor.scope();
    let unit = scope.org_unit(&state.db, input.org_unit_id).await?;
    if let Some(team_id) = input.team_id {
        check_team(&state.db, &scope, team_id, unit.id).await?;
    }
    let password_hash = state.passwords.hash(input.password).await?;
    let now = Utc::now();
    let txn = state.db.begin().await?;
    let user = users::ActiveModel {
        id: Set(Uuid::now_v7()),
        username: Set(input.username),
        password_hash: Set(password_hash),
        role: Set(input.role.as_str().to_string()),
        org_unit_id: Set(unit.id),
        team_id: Set(input.team_id),
        active: Set(true),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await
    .map_err(|e| ApiError::from_db_unique(e, "username", "this username is taken"))?;
    audit::record(
        &txn,
        Some(actor.user_id),
        "user.create",
        "user",
        Some(user.id.to_string()),
        json!({ "role": user.role, "org_unit_id": user.org_unit_id, "team_id": user.team_id }),
    )
    .await?;
    txn.commit().await?;
    user_out(user)
}

/// Lists users in the caller's scope.
pub async fn list_users(
    state: &AppState,
    actor: &Principal,
    filter: &UserFilter,
) -> ApiResult<Page<UserOut>> {
    let page = PageRequest::parse(filter.cursor.as_deref(), filter.limit)?;
    let scope = actor.scope();
    let mut query = users::Entity::find()
        .inner_join(org_units::Entity)
        .filter(scope.path_condition(org_units::Column::Path));
    if let Some(unit_id) = filter.org_unit_id {
        let unit = scope.org_unit(&state.db, unit_id).await?;
        query = query.filter(org_units::Column::Path.starts_with(unit.path.as_str()));
    }
    if let Some(role) = filter.role {
        query = query.filter(users::Column::Role.eq(role.as_str()));
    }
    if let Some(active) = filter.active {
        query = query.filter(users::Column::Active.eq(active));
    }
    if let Some(after) = page.after {
        query = query.filter(users::Column::Id.gt(after));
    }
    let rows = query
        .order_by_asc(users::Column::Id)
        .limit(page.limit + 1)
        .all(&state.db)
        .await?;
    let page = page.finish(rows, |u| u.id, user_out);
    Ok(Page {
        items: page.items.into_iter().collect::<ApiResult<Vec<_>>>()?,
        next_cursor: page.next_cursor,
    })
}

/// One user in the caller's scope.
pub async fn get_user(state: &AppState, actor: &Principal, id: Uuid) -> ApiResult<UserOut> {
    let (user, _) = scoped_user(&state.db, &actor.scope(), id).await?;
    user_out(user)
}

/// Edits a user in the caller's scope.
pub async fn update_user(
    state: &AppState,
    actor: &Principal,
    id: Uuid,
    patch: UserPatch,
) -> ApiResult<UserOut> {
    let scope = actor.scope();
    let (user, _) = scoped_user(&state.db, &scope, id).await?;
    let current_role = Role::parse(&user.role)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("user {} has unknown role", user.id)))?;
    let is_self = user.id == actor.user_id;
    if is_self
        && (patch.role.is_some()
            || patch.org_unit_id.is_some()
            || patch.team_id.is_some()
            || patch.active.is_some())
    {
        return Err(ApiError::Forbidden(
            "you cannot change your own role, org unit, team or active flag".into(),
        ));
    }
    if !is_self {
        check_may_manage_role(actor, current_role)?;
    }
    if is_self && patch.password.is_some() {
        let Some(current) = patch.current_password.clone() else {
            return Err(ApiError::invalid(
                "current_password",
                "required",
                "give your current password to change it",
            ));
        };
        sessions::check_current_password(state, &user, current).await?;
    }
    if let Some(role) = patch.role {
        check_may_manage_role(actor, role)?;
    }
    let org_unit_id = match patch.org_unit_id {
        Some(unit_id) => scope.org_unit(&state.db, unit_id).await?.id,
        None => user.org_unit_id,
    };
    let team_id = match patch.team_id {
        Some(team) => team,
        // Moving to another unit leaves the old unit's team.
        None if org_unit_id != user.org_unit_id => None,
        None => user.team_id,
    };
    if let Some(team) = team_id {
        if Some(team) != user.team_id || org_unit_id != user.org_unit_id {
            check_team(&state.db, &scope, team, org_unit_id).await?;
        }
    }
    let password_hash = match patch.password {
        Some(pw) => Some(state.passwords.hash(pw).await?),
        None => None,
    };

    let mut changed = serde_json::Map::new();
    let mut model: users::ActiveModel = user.clone().into();
    if let Some(role) = patch.role.filter(|r| *r != current_role) {
        model.role = Set(role.as_str().to_string());
        changed.insert("role".into(), json!({ "from": user.role, "to": role }));
    }
    if org_unit_id != user.org_unit_id {
        model.org_unit_id = Set(org_unit_id);
        changed.insert(
            "org_unit_id".into(),
            json!({ "from": user.org_unit_id, "to": org_unit_id }),
        );
    }
    if team_id != user.team_id {
        model.team_id = Set(team_id);
        changed.insert(
            "team_id".into(),
            json!({ "from": user.team_id, "to": team_id }),
        );
    }
    let deactivating = patch.active == Some(false) && user.active;
    if let Some(active) = patch.active.filter(|a| *a != user.active) {
        model.active = Set(active);
        changed.insert(
            "active".into(),
            json!({ "from": user.active, "to": active }),
        );
    }
    let password_changed = password_hash.is_some();
    if let Some(hash) = password_hash {
        model.password_hash = Set(hash);
        changed.insert("password".into(), json!("changed"));
    }
    if changed.is_empty() {
        return user_out(user);
    }
    model.updated_at = Set(Utc::now());

    let txn = state.db.begin().await?;
    let updated = model.update(&txn).await?;
    let revoked = if deactivating || (password_changed && !is_self) {
        sessions::revoke_user_tokens(&txn, updated.id, None).await?
            + crate::services::web_sessions::end_user_sessions(&txn, updated.id).await?
    } else {
        0
    };
    if revoked > 0 {
        changed.insert("sessions_revoked".into(), json!(revoked));
    }
    let action = if deactivating {
        "user.deactivate"
    } else {
        "user.update"
    };
    audit::record(
        &txn,
        Some(actor.user_id),
        action,
        "user",
        Some(updated.id.to_string()),
        serde_json::Value::Object(changed),
    )
    .await?;
    txn.commit().await?;
    user_out(updated)
}

/// Revokes the sessions a user holds on one device (a lost or handed-back phone).
pub async fn revoke_device(
    state: &AppState,
    actor: &Principal,
    id: Uuid,
    device_id: &str,
) -> ApiResult<()> {
    let scope = actor.scope();
    let (user, _) = scoped_user(&state.db, &scope, id).await?;
    if user.id != actor.user_id {
        let role = Role::parse(&user.role).ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("user {} has unknown role", user.id))
        })?;
        check_may_manage_role(actor, role)?;
    }
    let txn = state.db.begin().await?;
    let revoked = sessions::revoke_user_tokens(&txn, user.id, Some(device_id)).await?;
    // An enrolled phone also loses its OpenRosa address and sign-in code.
    let enrolled = crate::services::devices::revoke(&txn, user.id, device_id).await?;
    audit::record(
        &txn,
        Some(actor.user_id),
        "user.revoke_device",
        "user",
        Some(user.id.to_string()),
        json!({ "device_id": device_id, "sessions_revoked": revoked, "enrolled_device_revoked": enrolled }),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// The root of the org-unit tree (the city), where admins belong.
async fn root_unit<C: ConnectionTrait>(db: &C) -> anyhow::Result<org_units::Model> {
    org_units::Entity::find()
        .filter(org_units::Column::ParentId.is_null())
        .order_by_asc(org_units::Column::Id)
        .one(db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the org-unit tree has no root; were migrations applied?"))
}

/// Creates a user directly (CLI): used for the first admin and demo accounts.
pub async fn create_account(
    state: &AppState,
    username: &str,
    role: Role,
    org_unit_code: Option<&str>,
    team_id: Option<Uuid>,
) -> anyhow::Result<(UserOut, String)> {
    // The same rule as the API's: login lowercases what it is given, so an account
    // made here with capitals could never log in.
    if !(3..=64).contains(&username.len()) || shared_models::validate_username(username).is_err() {
        anyhow::bail!(
            "username {username:?}: 3 to 64 lowercase ASCII letters, digits, '.', '_' or '-'"
        );
    }
    let unit = match org_unit_code {
        Some(code) => org_units::Entity::find()
            .filter(org_units::Column::Code.eq(code))
            .one(&state.db)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no org unit with code {code}"))?,
        None => root_unit(&state.db).await?,
    };
    let password = random_password();
    let hash = state
        .passwords
        .hash(password.clone())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let now = Utc::now();
    let txn = state.db.begin().await?;
    let user = users::ActiveModel {
        id: Set(Uuid::now_v7()),
        username: Set(username.to_string()),
        password_hash: Set(hash),
        role: Set(role.as_str().to_string()),
        org_unit_id: Set(unit.id),
        team_id: Set(team_id),
        active: Set(true),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        None,
        "user.create",
        "user",
        Some(user.id.to_string()),
        json!({ "role": user.role, "org_unit_id": user.org_unit_id, "via": "cli" }),
    )
    .await?;
    txn.commit().await?;
    Ok((
        user_out(user).map_err(|e| anyhow::anyhow!("{e}"))?,
        password,
    ))
}

/// On first start (no users at all), creates `admin` with a random password.
pub async fn ensure_first_admin(state: &AppState) -> anyhow::Result<Option<(UserOut, String)>> {
    if users::Entity::find().count(&state.db).await? > 0 {
        return Ok(None);
    }
    create_account(state, "admin", Role::Admin, None, None)
        .await
        .map(Some)
}
