//! Hotspots, the places outreach is planned around: supervisors manage those in their
//! subtree, field workers read those of their area. No coordinates are kept.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use shared_models::{HotspotFilter, HotspotIn, HotspotOut, HotspotPatch, HotspotType, Page};
use uuid::Uuid;

use crate::auth::Principal;
use crate::db::entities::hotspots;
use crate::db::scope::Scope;
use crate::error::{ApiError, ApiResult};
use crate::paging::PageRequest;
use crate::services::audit;

fn hotspot_out(row: hotspots::Model) -> ApiResult<HotspotOut> {
    Ok(HotspotOut {
        id: row.id,
        code: row.code,
        hotspot_type: HotspotType::parse(&row.hotspot_type).ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("hotspot {} has an unknown type", row.id))
        })?,
        org_unit_id: row.org_unit_id,
        estimated_size: row.estimated_size.map(|n| n.max(0) as u32),
        active: row.active,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

fn path_in(scope: &Scope) -> sea_orm::sea_query::SimpleExpr {
    match scope {
        Scope::All => sea_orm::sea_query::Expr::value(true),
        Scope::Subtree(prefix) => hotspots::Column::OrgPath.starts_with(prefix.as_str()),
    }
}

/// A hotspot inside the scope; 404 otherwise.
pub async fn scoped<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    id: Uuid,
) -> ApiResult<hotspots::Model> {
    hotspots::Entity::find_by_id(id)
        .filter(path_in(scope))
        .one(db)
        .await?
        .ok_or(ApiError::NotFound("hotspot"))
}

/// Hotspots in the caller's subtree.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    actor: &Principal,
    filter: &HotspotFilter,
) -> ApiResult<Page<HotspotOut>> {
    let page = PageRequest::parse(filter.cursor.as_deref(), filter.limit)?;
    let scope = actor.scope();
    let mut query = hotspots::Entity::find().filter(path_in(&scope));
    if let Some(unit_id) = filter.org_unit_id {
        let unit = scope.org_unit(db, unit_id).await?;
        query = query.filter(hotspots::Column::OrgPath.starts_with(unit.path.as_str()));
    }
    if let Some(active) = filter.active {
        query = query.filter(hotspots::Column::Active.eq(active));
    }
    if let Some(t) = filter.hotspot_type {
        query = query.filter(hotspots::Column::HotspotType.eq(t.as_str()));
    }
    if let Some(after) = page.after {
        query = query.filter(hotspots::Column::Id.gt(after));
    }
    let rows = query
        .order_by_asc(hotspots::Column::Id)
        .limit(page.limit + 1)
        .all(db)
        .await?;
    let page = page.finish(rows, |h| h.id, hotspot_out);
    Ok(Page {
        items: page.items.into_iter().collect::<ApiResult<Vec<_>>>()?,
        next_cursor: page.next_cursor,
    })
}

/// One hotspot in the caller's subtree.
pub async fn get<C: ConnectionTrait>(db: &C, actor: &Principal, id: Uuid) -> ApiResult<HotspotOut> {
    hotspot_out(scoped(db, &actor.scope(), id).await?)
}

/// Creates a hotspot in a unit of the caller's subtree.
pub async fn create<C: ConnectionTrait>(
    db: &C,
    actor: &Principal,
    input: HotspotIn,
) -> ApiResult<HotspotOut> {
    let unit = actor.scope().org_unit(db, input.org_unit_id).await?;
    let now = Utc::now();
    let row = hotspots::ActiveModel {
        id: Set(Uuid::now_v7()),
        code: Set(input.code),
        hotspot_type: Set(input.hotspot_type.as_str().to_string()),
        org_unit_id: Set(unit.id),
        org_path: Set(unit.path),
        estimated_size: Set(input.estimated_size.map(|n| n as i32)),
        active: Set(input.active.unwrap_or(true)),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
    .map_err(|e| ApiError::from_db_unique(e, "code", "a hotspot with this code exists"))?;
    audit::record(
        db,
        Some(actor.user_id),
        "hotspot.create",
        "hotspot",
        Some(row.id.to_string()),
        serde_json::json!({ "code": row.code, "org_unit_id": row.org_unit_id }),
    )
    .await?;
    hotspot_out(row)
}

/// Changes a hotspot in the caller's subtree.
pub async fn update<C: ConnectionTrait>(
    db: &C,
    actor: &Principal,
    id: Uuid,
    patch: HotspotPatch,
) -> ApiResult<HotspotOut> {
    let row = scoped(db, &actor.scope(), id).await?;
    let mut am: hotspots::ActiveModel = row.into();
    if let Some(t) = patch.hotspot_type {
        am.hotspot_type = Set(t.as_str().to_string());
    }
    if let Some(size) = patch.estimated_size {
        if size.is_some_and(|n| n > 100_000) {
            return Err(ApiError::invalid(
                "estimated_size",
                "range",
                "must be at most 100000",
            ));
        }
        am.estimated_size = Set(size.map(|n| n as i32));
    }
    if let Some(active) = patch.active {
        am.active = Set(active);
    }
    am.updated_at = Set(Utc::now());
    let row = am.update(db).await?;
    audit::record(
        db,
        Some(actor.user_id),
        "hotspot.update",
        "hotspot",
        Some(row.id.to_string()),
        serde_json::json!({ "active": row.active }),
    )
    .await?;
    hotspot_out(row)
}
