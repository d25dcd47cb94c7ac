//! Foundation: the org-unit tree (seeded with Hanoi and its 30 pre-2025 districts),
//! teams, users, refresh tokens, failed-login records and the audit log.

use chrono::NaiveDate;
use sea_orm_migration::{prelude::*, schema::*};
use uuid::Uuid;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Hanoi's org units as published before the 2025 reorganisation (`code,name,level,type,parent_code`).
const HANOI_ORG_UNITS: &str = include_str!("../seed/hanoi_org_units.csv");

/// The district level was abolished on 2025-07-01; the districts' last day.
const DISTRICTS_LAST_DAY: (i32, u32, u32) = (2025, 6, 30);

#[derive(DeriveIden)]
enum OrgUnits {
    Table,
    Id,
    Code,
    Name,
    Level,
    UnitType,
    ParentId,
    Path,
    ValidFrom,
    ValidTo,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Teams {
    Table,
    Id,
    OrgUnitId,
    Code,
    Name,
    Kind,
    Active,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Username,
    PasswordHash,
    Role,
    OrgUnitId,
    TeamId,
    Active,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    Id,
    UserId,
    FamilyId,
    TokenHash,
    DeviceId,
    CreatedAt,
    ExpiresAt,
    UsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum LoginFailures {
    Table,
    Id,
    UsernameKey,
    At,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    At,
    ActorId,
    Action,
    TargetType,
    TargetId,
    Detail,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(OrgUnits::Table)
                    .col(pk_uuid(OrgUnits::Id))
                    .col(string_len_uniq(OrgUnits::Code, 32))
                    .col(string_len(OrgUnits::Name, 200))
                    .col(string_len(OrgUnits::Level, 32))
                    .col(string_len(OrgUnits::UnitType, 32))
                    .col(uuid_null(OrgUnits::ParentId))
                    .col(string_len(OrgUnits::Path, 1024))
                    .col(date_null(OrgUnits::ValidFrom))
                    .col(date_null(OrgUnits::ValidTo))
                    .col(timestamp_with_time_zone(OrgUnits::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_org_units_parent")
                            .from(OrgUnits::Table, OrgUnits::ParentId)
                            .to(OrgUnits::Table, OrgUnits::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_org_units_parent")
                    .table(OrgUnits::Table)
                    .col(OrgUnits::ParentId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_org_units_path")
                    .table(OrgUnits::Table)
                    .col(OrgUnits::Path)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Teams::Table)
                    .col(pk_uuid(Teams::Id))
                    .col(uuid(Teams::OrgUnitId))
                    .col(string_len_uniq(Teams::Code, 32))
                    .col(string_len(Teams::Name, 200))
                    .col(string_len(Teams::Kind, 32))
                    .col(boolean(Teams::Active))
                    .col(timestamp_with_time_zone(Teams::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_teams_org_unit")
                            .from(Teams::Table, Teams::OrgUnitId)
                            .to(OrgUnits::Table, OrgUnits::Id),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(pk_uuid(Users::Id))
                    .col(string_len_uniq(Users::Username, 64))
                    .col(string_len(Users::PasswordHash, 256))
                    .col(string_len(Users::Role, 32))
                    .col(uuid(Users::OrgUnitId))
                    .col(uuid_null(Users::TeamId))
                    .col(boolean(Users::Active))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .col(timestamp_with_time_zone(Users::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_users_org_unit")
                            .from(Users::Table, Users::OrgUnitId)
                            .to(OrgUnits::Table, OrgUnits::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_users_team")
                            .from(Users::Table, Users::TeamId)
                            .to(Teams::Table, Teams::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_users_org_unit")
                    .table(Users::Table)
                    .col(Users::OrgUnitId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    .col(pk_uuid(RefreshTokens::Id))
                    .col(uuid(RefreshTokens::UserId))
                    .col(uuid(RefreshTokens::FamilyId))
                    .col(string_len_uniq(RefreshTokens::TokenHash, 64))
                    .col(string_len(RefreshTokens::DeviceId, 128))
                    .col(timestamp_with_time_zone(RefreshTokens::CreatedAt))
                    .col(timestamp_with_time_zone(RefreshTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(RefreshTokens::UsedAt))
                    .col(timestamp_with_time_zone_null(RefreshTokens::RevokedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_refresh_tokens_user")
                            .from(RefreshTokens::Table, RefreshTokens::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_refresh_tokens_family")
                    .table(RefreshTokens::Table)
                    .col(RefreshTokens::FamilyId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_refresh_tokens_user")
                    .table(RefreshTokens::Table)
                    .col(RefreshTokens::UserId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(LoginFailures::Table)
                    .col(pk_uuid(LoginFailures::Id))
                    .col(string_len(LoginFailures::UsernameKey, 64))
                    .col(timestamp_with_time_zone(LoginFailures::At))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_login_failures_key_at")
                    .table(LoginFailures::Table)
                    .col(LoginFailures::UsernameKey)
                    .col(LoginFailures::At)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    .col(pk_uuid(AuditLog::Id))
                    .col(timestamp_with_time_zone(AuditLog::At))
                    .col(uuid_null(AuditLog::ActorId))
                    .col(string_len(AuditLog::Action, 64))
                    .col(string_len(AuditLog::TargetType, 64))
                    .col(string_len_null(AuditLog::TargetId, 128))
                    .col(json_binary(AuditLog::Detail))
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("idx_audit_log_at", AuditLog::At),
            ("idx_audit_log_actor", AuditLog::ActorId),
            ("idx_audit_log_action", AuditLog::Action),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(AuditLog::Table)
                        .col(col)
                        .to_owned(),
                )
                .await?;
        }

        seed_hanoi(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AuditLog::Table.into_iden(),
            LoginFailures::Table.into_iden(),
            RefreshTokens::Table.into_iden(),
            Users::Table.into_iden(),
            Teams::Table.into_iden(),
            OrgUnits::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Inserts Hanoi and its districts, parents before children, with their materialized paths.
async fn seed_hanoi(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let (y, m, d) = DISTRICTS_LAST_DAY;
    let districts_last_day = NaiveDate::from_ymd_opt(y, m, d)
        .ok_or_else(|| DbErr::Migration("bad districts' last day".into()))?;
    let now = chrono::Utc::now();
    // code → (id, path)
    let mut known: Vec<(String, Uuid, String)> = Vec::new();
    for (line_no, line) in HANOI_ORG_UNITS.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split(',').map(str::trim).collect();
        let [code, name, level, unit_type, parent_code] = cols[..] else {
            return Err(DbErr::Migration(format!(
                "hanoi_org_units.csv line {}: expected 5 columns",
                line_no + 1
            )));
        };
        let id = Uuid::now_v7();
        let (parent_id, path) = if parent_code.is_empty() {
            (None, format!("/{id}/"))
        } else {
            let (_, pid, ppath) =
                known
                    .iter()
                    .find(|(c, _, _)| c == parent_code)
                    .ok_or_else(|| {
                        DbErr::Migration(format!(
                            "hanoi_org_units.csv line {}: parent {parent_code} not defined before",
                            line_no + 1
                        ))
                    })?;
            (Some(*pid), format!("{ppath}{id}/"))
        };
        let valid_to = (level == "district").then_some(districts_last_day);
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(OrgUnits::Table)
                    .columns([
                        OrgUnits::Id,
                        OrgUnits::Code,
                        OrgUnits::Name,
                        OrgUnits::Level,
                        OrgUnits::UnitType,
                        OrgUnits::ParentId,
                        OrgUnits::Path,
                        OrgUnits::ValidFrom,
                        OrgUnits::ValidTo,
                        OrgUnits::CreatedAt,
                    ])
                    .values_panic([
                        id.into(),
                        code.into(),
                        name.into(),
                        level.into(),
                        unit_type.into(),
                        parent_id.into(),
                        path.clone().into(),
                        Option::<NaiveDate>::None.into(),
                        valid_to.into(),
                        now.into(),
                    ])
                    .to_owned(),
            )
            .await?;
        known.push((code.to_string(), id, path));
    }
    Ok(())
}
