//! The org-unit tree and the teams under it. The tree is of any depth; each unit keeps
//! its materialized path (`/root/…/self/`), so a subtree is one prefix match and a
//! supervisor's scope is a single condition. Units are never deleted: a unit that ceases
//! to exist gets a `valid_to`, and old submissions keep the unit they were made in.

use chrono::Utc;
use sea_orm::sea_query::Condition;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};
use serde_json::json;
use shared_models::{
    OrgUnitFilter, OrgUnitIn, OrgUnitOut, OrgUnitPatch, Page, TeamIn, TeamKind, TeamOut,
};
use uuid::Uuid;

use crate::auth::Principal;
use crate::db::entities::{org_units, teams};
use crate::error::{ApiError, ApiResult};
use crate::paging::PageRequest;
use crate::services::audit;
use crate::state::AppState;

/// The wire form of an org unit.
pub fn org_unit_out(m: org_units::Model) -> OrgUnitOut {
    OrgUnitOut {
        id: m.id,
        code: m.code,
        name: m.name,
        level: m.level,
        unit_type: m.unit_type,
        parent_id: m.parent_id,
        valid_from: m.valid_from,
        valid_to: m.valid_to,
        created_at: m.created_at,
    }
}

fn team_out(m: teams::Model) -> ApiResult<TeamOut> {
    let kind = TeamKind::parse(&m.kind)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("team {} has unknown kind", m.id)))?;
    Ok(TeamOut {
        id: m.id,
        org_unit_id: m.org_unit_id,
        code: m.code,
        name: m.name,
        kind,
        active: m.active,
        created_at: m.created_at,
    })
}

fn check_dates(from: Option<chrono::NaiveDate>, to: Option<chrono::NaiveDate>) -> ApiResult<()> {
    match (from, to) {
        (Some(f), Some(t)) if t < f => Err(ApiError::invalid(
            "valid_to",
            "before_valid_from",
            "valid_to must not be before valid_from",
        )),
        _ => Ok(()),
    }
}

/// Org units in the caller's scope.
pub async fn list(
    state: &AppState,
    actor: &Principal,
    filter: &OrgUnitFilter,
) -> ApiResult<Page<OrgUnitOut>> {
    let page = PageRequest::parse(filter.cursor.as_deref(), filter.limit)?;
    let scope = actor.scope();
    let mut query = org_units::Entity::find().filter(scope.path_condition(org_units::Column::Path));
    if let Some(parent) = filter.parent_id {
        scope.org_unit(&state.db, parent).await?;
        query = query.filter(org_units::Column::ParentId.eq(parent));
    }
    if let Some(day) = filter.valid_on {
        query = query
            .filter(
                Condition::any()
                    .add(org_units::Column::ValidFrom.is_null())
                    .add(org_units::Column::ValidFrom.lte(day)),
            )
            .filter(
                Condition::any()
                    .add(org_units::Column::ValidTo.is_null())
                    .add(org_units::Column::ValidTo.gte(day)),
            );
    }
    if let Some(after) = page.after {
        query = query.filter(org_units::Column::Id.gt(after));
    }
    let rows = query
        .order_by_asc(org_units::Column::Id)
        .limit(page.limit + 1)
        .all(&state.db)
        .await?;
    Ok(page.finish(rows, |u| u.id, org_unit_out))
}

/// One org unit in the caller's scope.
pub async fn get(state: &AppState, actor: &Principal, id: Uuid) -> ApiResult<OrgUnitOut> {
    Ok(org_unit_out(actor.scope().org_unit(&state.db, id).await?))
}

/// Creates an org unit under an existing parent (admins).
pub async fn create(
    state: &AppState,
    actor: &Principal,
    input: OrgUnitIn,
) -> ApiResult<OrgUnitOut> {
    check_dates(input.valid_from, input.valid_to)?;
    let parent = org_units::Entity::find_by_id(input.parent_id)
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::invalid("parent_id", "not_found", "no such org unit"))?;
    let id = Uuid::now_v7();
    let txn = state.db.begin().await?;
    let unit = org_units::ActiveModel {
        id: Set(id),
        code: Set(input.code),
        name: Set(input.name),
        level: Set(input.level),
        unit_type: Set(input.unit_type),
        parent_id: Set(Some(parent.id)),
        path: Set(format!("{}{id}/", parent.path)),
        valid_from: Set(input.valid_from),
        valid_to: Set(input.valid_to),
        created_at: Set(Utc::now()),
    }
    .insert(&txn)
    .await
    .map_err(|e| ApiError::from_db_unique(e, "code", "an org unit with this code exists"))?;
    audit::record(
        &txn,
        Some(actor.user_id),
        "org_unit.create",
        "org_unit",
        Some(unit.id.to_string()),
        json!({ "code": unit.code, "parent_id": parent.id }),
    )
    .await?;
    txn.commit().await?;
    Ok(org_unit_out(unit))
}

/// Renames an org unit or changes its validity (admins).
pub async fn update(
    state: &AppState,
    actor: &Principal,
    id: Uuid,
    patch: OrgUnitPatch,
) -> ApiResult<OrgUnitOut> {
    let unit = actor.scope().org_unit(&state.db, id).await?;
    let valid_from = patch.valid_from.unwrap_or(unit.valid_from);
    let valid_to = patch.valid_to.unwrap_or(unit.valid_to);
    check_dates(valid_from, valid_to)?;
    let mut model: org_units::ActiveModel = unit.clone().into();
    let mut changed = serde_json::Map::new();
    if let Some(name) = patch.name.filter(|n| *n != unit.name) {
        changed.insert("name".into(), json!("changed"));
        model.name = Set(name);
    }
    if valid_from != unit.valid_from {
        changed.insert(
            "valid_from".into(),
            json!({ "from": unit.valid_from, "to": valid_from }),
        );
        model.valid_from = Set(valid_from);
    }
    if valid_to != unit.valid_to {
        changed.insert(
            "valid_to".into(),
            json!({ "from": unit.valid_to, "to": valid_to }),
        );
        model.valid_to = Set(valid_to);
    }
    if changed.is_empty() {
        return Ok(org_unit_out(unit));
    }
    let txn = state.db.begin().await?;
    let updated = model.update(&txn).await?;
    audit::record(
        &txn,
        Some(actor.user_id),
        "org_unit.update",
        "org_unit",
        Some(updated.id.to_string()),
        serde_json::Value::Object(changed),
    )
    .await?;
    txn.commit().await?;
    Ok(org_unit_out(updated))
}

/// Teams in the caller's scope, optionally of one unit's subtree.
pub async fn list_teams(
    state: &AppState,
    actor: &Principal,
    org_unit_id: Option<Uuid>,
    cursor: Option<&str>,
    limit: Option<u64>,
) -> ApiResult<Page<TeamOut>> {
    let page = PageRequest::parse(cursor, limit)?;
    let scope = actor.scope();
    let mut query = teams::Entity::find()
        .inner_join(org_units::Entity)
        .filter(scope.path_condition(org_units::Column::Path));
    if let Some(unit_id) = org_unit_id {
        let unit = scope.org_unit(&state.db, unit_id).await?;
        query = query.filter(org_units::Column::Path.starts_with(unit.path.as_str()));
    }
    if let Some(after) = page.after {
        query = query.filter(teams::Column::Id.gt(after));
    }
    let rows = query
        .order_by_asc(teams::Column::Id)
        .limit(page.limit + 1)
        .all(&state.db)
        .await?;
    let page = page.finish(rows, |t| t.id, team_out);
    Ok(Page {
        items: page.items.into_iter().collect::<ApiResult<Vec<_>>>()?,
        next_cursor: page.next_cursor,
    })
}

/// Creates a team under an org unit in the caller's scope.
pub async fn create_team(state: &AppState, actor: &Principal, input: TeamIn) -> ApiResult<TeamOut> {
    let unit = actor.scope().org_unit(&state.db, input.org_unit_id).await?;
    let txn = state.db.begin().await?;
    let team = teams::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_unit_id: Set(unit.id),
        code: Set(input.code),
        name: Set(input.name),
        kind: Set(input.kind.as_str().to_string()),
        active: Set(true),
        created_at: Set(Utc::now()),
    }
    .insert(&txn)
    .await
    .map_err(|e| ApiError::from_db_unique(e, "code", "a team with this code exists"))?;
    audit::record(
        &txn,
        Some(actor.user_id),
        "team.create",
        "team",
        Some(team.id.to_string()),
        json!({ "code": team.code, "org_unit_id": unit.id }),
    )
    .await?;
    txn.commit().await?;
    team_out(team)
}
