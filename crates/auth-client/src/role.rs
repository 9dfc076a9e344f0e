use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A user's role. Checked in the service handler that needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    /// Everything, including granting ADMIN.
    SuperAdmin,
    /// Runs the catalogue, orders, content and diary.
    Admin,
    /// A kitchen/bedroom design consultant: the diary and their bookings.
    Consultant,
    /// A shopper.
    Customer,
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 4] = [
        Role::SuperAdmin,
        Role::Admin,
        Role::Consultant,
        Role::Customer,
    ];

    /// ADMIN or SUPER_ADMIN.
    pub fn is_admin(self) -> bool {
        matches!(self, Role::SuperAdmin | Role::Admin)
    }

    /// Whether this role must sign in with a second factor before any administrative use
    /// (ADMIN and SUPER_ADMIN; optional for everyone else).
    pub fn requires_second_factor(self) -> bool {
        self.is_admin()
    }

    /// Any role that works for the business (not a customer).
    pub fn is_staff(self) -> bool {
        !matches!(self, Role::Customer)
    }

    /// The wire name, e.g. `SUPER_ADMIN`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::SuperAdmin => "SUPER_ADMIN",
            Role::Admin => "ADMIN",
            Role::Consultant => "CONSULTANT",
            Role::Customer => "CUSTOMER",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role `{s}`"))
    }
}
