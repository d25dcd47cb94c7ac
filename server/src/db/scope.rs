//! Scope: what part of the org-unit tree a caller may see. Every query that reads
//! another user's data starts here, so a supervisor in Đống Đa never sees Hoàn Kiếm.

use sea_orm::sea_query::{Expr, SimpleExpr};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::db::entities::org_units;
use crate::error::{ApiError, ApiResult};

/// The part of the tree a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Everything (admins).
    All,
    /// The subtree whose materialized path starts with this prefix (supervisors).
    Subtree(String),
}

impl Scope {
    /// Whether an org unit with this path lies inside the scope.
    pub fn contains_path(&self, path: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Subtree(prefix) => path.starts_with(prefix.as_str()),
        }
    }

    /// A condition on an org-unit path column selecting the scope.
    pub fn path_condition(&self, column: org_units::Column) -> SimpleExpr {
        match self {
            Scope::All => Expr::value(true),
            Scope::Subtree(prefix) => column.starts_with(prefix.as_str()),
        }
    }

    /// Loads an org unit inside the scope; 404 when absent or outside.
    pub async fn org_unit<C: ConnectionTrait>(
        &self,
        db: &C,
        id: Uuid,
    ) -> ApiResult<org_units::Model> {
        org_units::Entity::find_by_id(id)
            .filter(self.path_condition(org_units::Column::Path))
            .one(db)
            .await?
            .ok_or(ApiError::NotFound("org unit"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtree_contains_descendants_only() {
        let scope = Scope::Subtree("/a/b/".into());
        assert!(scope.contains_path("/a/b/"));
        assert!(scope.contains_path("/a/b/c/"));
        assert!(!scope.contains_path("/a/"));
        assert!(!scope.contains_path("/a/bc/"));
        assert!(Scope::All.contains_path("/z/"));
    }
}
