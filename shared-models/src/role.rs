//! Roles: who a user is in the program, which decides what they may do.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A user's role in the program (see DESIGN.md, "Who uses it").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A member of a peer group: outreach contacts, distribution, referrals.
    PeerEducator,
    /// A social-work volunteer: support visits and group sessions.
    Volunteer,
    /// A district or commune officer who reviews and manages their area.
    Supervisor,
    /// The city's office: everything.
    Admin,
}

impl Role {
    /// Every role, in order of growing privilege.
    pub const ALL: [Role; 4] = [
        Role::PeerEducator,
        Role::Volunteer,
        Role::Supervisor,
        Role::Admin,
    ];

    /// The stable name used on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::PeerEducator => "peer_educator",
            Role::Volunteer => "volunteer",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    /// Parses the stable name; `None` for anything else.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Field roles submit forms; they see only their own submissions.
    pub fn is_field(self) -> bool {
        matches!(self, Role::PeerEducator | Role::Volunteer)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_parse_and_serde() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
            let json = serde_json::to_string(&role).expect("serialize");
            assert_eq!(json, format!("\"{}\"", role.as_str()));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
