//! Org units (the administrative tree) and teams (peer groups, volunteer teams).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use validator::Validate;

/// A unit of the administrative tree: the city, a district, a ward or commune.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OrgUnitOut {
    pub id: Uuid,
    /// The official administrative code, unique (e.g. `006` for Đống Đa).
    pub code: String,
    pub name: String,
    /// `city`, `district`, `ward`, `commune`, …
    pub level: String,
    /// The official type (`quan`, `huyen`, `phuong`, `xa`, …).
    #[serde(rename = "type")]
    pub unit_type: String,
    pub parent_id: Option<Uuid>,
    /// First day the unit existed; absent when it predates the records.
    pub valid_from: Option<NaiveDate>,
    /// Last day the unit existed; absent while it still exists.
    pub valid_to: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
}

/// Creates an org unit under a parent (admin only).
#[derive(Debug, Clone, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgUnitIn {
    #[validate(
        length(min = 1, max = 32),
        custom(function = "crate::org_unit::validate_code")
    )]
    pub code: String,
    #[validate(length(min = 1, max = 200))]
    pub name: String,
    #[validate(length(min = 1, max = 32))]
    pub level: String,
    #[serde(rename = "type")]
    #[validate(length(min = 1, max = 32))]
    pub unit_type: String,
    pub parent_id: Uuid,
    pub valid_from: Option<NaiveDate>,
    pub valid_to: Option<NaiveDate>,
}

/// Changes an org unit's name or validity (admin only); absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgUnitPatch {
    #[validate(length(min = 1, max = 200))]
    pub name: Option<String>,
    /// `null` clears the date.
    #[serde(default, with = "crate::org_unit::double_option")]
    #[schema(value_type = Option<NaiveDate>)]
    pub valid_from: Option<Option<NaiveDate>>,
    /// `null` clears the date.
    #[serde(default, with = "crate::org_unit::double_option")]
    #[schema(value_type = Option<NaiveDate>)]
    pub valid_to: Option<Option<NaiveDate>>,
}

/// Filters for `GET /api/v1/org-units`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct OrgUnitFilter {
    /// Only the direct children of this unit.
    pub parent_id: Option<Uuid>,
    /// Only units that existed on this day.
    pub valid_on: Option<NaiveDate>,
    pub cursor: Option<String>,
    pub limit: Option<u64>,
}

/// A peer group or volunteer team under an org unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TeamOut {
    pub id: Uuid,
    pub org_unit_id: Uuid,
    pub code: String,
    pub name: String,
    pub kind: TeamKind,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

/// What kind of team this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TeamKind {
    /// Nhóm đồng đẳng: a peer-educator group.
    PeerGroup,
    /// Đội CTXHTN: a social-work volunteer team.
    VolunteerTeam,
}

impl TeamKind {
    /// The stable name used on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            TeamKind::PeerGroup => "peer_group",
            TeamKind::VolunteerTeam => "volunteer_team",
        }
    }

    /// Parses the stable name.
    pub fn parse(s: &str) -> Option<TeamKind> {
        [TeamKind::PeerGroup, TeamKind::VolunteerTeam]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// Creates a team under an org unit in the caller's scope.
#[derive(Debug, Clone, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamIn {
    pub org_unit_id: Uuid,
    #[validate(
        length(min = 1, max = 32),
        custom(function = "crate::org_unit::validate_code")
    )]
    pub code: String,
    #[validate(length(min = 1, max = 200))]
    pub name: String,
    pub kind: TeamKind,
}

/// Codes are short identifiers printed on paper: letters, digits, `-` and `_`.
pub fn validate_code(code: &str) -> Result<(), validator::ValidationError> {
    if code
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Ok(())
    } else {
        let mut e = validator::ValidationError::new("bad_code");
        e.message = Some("only ASCII letters, digits, '-' and '_' are allowed".into());
        Err(e)
    }
}

/// Serde helper telling an absent field (`None`) from an explicit `null` (`Some(None)`).
pub mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Serializes the inner option.
    pub fn serialize<T: Serialize, S: Serializer>(
        value: &Option<Option<T>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    /// A present field (even `null`) becomes `Some(..)`.
    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}
