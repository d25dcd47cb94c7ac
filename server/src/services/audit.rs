//! The audit log: every user change, review, export and read of submission details is
//! recorded in the same transaction as the act itself. Details never carry passwords,
//! tokens or UICs.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use shared_models::{AuditEntryOut, AuditFilter, Page};
use uuid::Uuid;

use crate::db::entities::audit_log;
use crate::error::ApiResult;
use crate::paging::PageRequest;

/// Appends one entry to the audit log.
pub async fn record<C: ConnectionTrait>(
    db: &C,
    actor_id: Option<Uuid>,
    action: &str,
    target_type: &str,
    target_id: Option<String>,
    detail: serde_json::Value,
) -> Result<(), DbErr> {
    audit_log::ActiveModel {
        id: Set(Uuid::now_v7()),
        at: Set(Utc::now()),
        actor_id: Set(actor_id),
        action: Set(action.to_string()),
        target_type: Set(target_type.to_string()),
        target_id: Set(target_id),
        detail: Set(detail),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Lists entries, newest first, filtered by actor, action and period.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    filter: &AuditFilter,
) -> ApiResult<Page<AuditEntryOut>> {
    let page = PageRequest::parse(filter.cursor.as_deref(), filter.limit)?;
    let mut query = audit_log::Entity::find();
    if let Some(actor) = filter.actor_id {
        query = query.filter(audit_log::Column::ActorId.eq(actor));
    }
    if let Some(action) = &filter.action {
        query = query.filter(audit_log::Column::Action.eq(action.as_str()));
    }
    if let Some(from) = filter.from {
        query = query.filter(audit_log::Column::At.gte(from));
    }
    if let Some(to) = filter.to {
        query = query.filter(audit_log::Column::At.lt(to));
    }
    if let Some(after) = page.after {
        query = query.filter(audit_log::Column::Id.lt(after));
    }
    let rows = query
        .order_by_desc(audit_log::Column::Id)
        .limit(page.limit + 1)
        .all(db)
        .await?;
    Ok(page.finish(
        rows,
        |r| r.id,
        |r| AuditEntryOut {
            id: r.id,
            at: r.at,
            actor_id: r.actor_id,
            action: r.action,
            target_type: r.target_type,
            target_id: r.target_id,
            detail: r.detail,
        },
    ))
}
