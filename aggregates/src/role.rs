//! Platform roles: the single vocabulary for who may do what.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A platform role. Ordered by privilege: `Viewer < Operator < Admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything it is allowed to see, changes nothing.
    Viewer,
    /// Operates Docker resources within the safe policy.
    Operator,
    /// Manages users, hosts and dangerous options.
    Admin,
}

impl Role {
    /// All roles, lowest privilege first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    /// The lowercase name used in the API, the database and tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a role name that is not one of `admin`, `operator`, `viewer`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role '{0}': expected admin, operator or viewer")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(UnknownRole(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_order() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
        assert!("Admin".parse::<Role>().is_err());
    }
}
