//! Validated values: built through `parse`, so an invalid one cannot exist.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest organization name, in characters (docs/security.md, "Input limits").
pub const ORGANIZATION_NAME_MAX: usize = 200;
/// Longest display name, in characters.
pub const DISPLAY_NAME_MAX: usize = 100;
/// Longest e-mail address, in bytes (RFC 5321's path limit).
pub const EMAIL_MAX: usize = 254;

/// A value failed validation; the message is safe to show to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub &'static str);

/// An e-mail address, trimmed and lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// Validates and normalises.
    ///
    /// # Errors
    /// When it is not `local@domain.tld`-shaped or longer than 254 characters.
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        let email = text.trim().to_lowercase();
        let bad = ValueError("must be an e-mail address like name@example.com");
        let refused = |c: char| {
            c.is_whitespace() || c.is_control() || trellis_kernel::text::is_bidi_control(c)
        };
        if email.len() > EMAIL_MAX || email.chars().any(refused) {
            return Err(bad);
        }
        let (local, domain) = email.split_once('@').ok_or(bad.clone())?;
        if local.is_empty() || domain.len() < 3 || !domain.contains('.') || domain.contains('@') {
            return Err(bad);
        }
        if domain.starts_with('.') || domain.ends_with('.') {
            return Err(bad);
        }
        Ok(Self(email))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! bounded_text {
    ($(#[$doc:meta])* $name:ident, $max:expr, $msg:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Trims and checks the length and the characters (one line; no control or
            /// bidirectional-override characters, `trellis_kernel::text::check_line`).
            ///
            /// # Errors
            /// When empty, too long or holding a refused character.
            pub fn parse(text: &str) -> Result<Self, ValueError> {
                let text = text.trim();
                let len = text.chars().count();
                if len == 0 || len > $max {
                    return Err(ValueError($msg));
                }
                trellis_kernel::text::check_line(text, $max).map_err(|_| {
                    ValueError(
                        "must not contain control characters or Unicode bidirectional \
                         override or isolate characters",
                    )
                })?;
                Ok(Self(text.to_owned()))
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}

bounded_text!(
    /// An organization's name.
    OrganizationName,
    ORGANIZATION_NAME_MAX,
    "must be 1 to 200 characters"
);
bounded_text!(
    /// How a user is shown.
    DisplayName,
    DISPLAY_NAME_MAX,
    "must be 1 to 100 characters"
);

/// What a user may do (SPEC §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages the organization: users, catalog, audit.
    Admin,
    /// Reviews and approves their reports' plans.
    Manager,
    /// Has development plans and goals.
    Employee,
    /// Runs cohorts and publishes content.
    Instructor,
    /// Joins cohorts.
    Learner,
}

impl Role {
    /// Parses a role name.
    ///
    /// # Errors
    /// For unknown names.
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        match text {
            "admin" => Ok(Self::Admin),
            "manager" => Ok(Self::Manager),
            "employee" => Ok(Self::Employee),
            "instructor" => Ok(Self::Instructor),
            "learner" => Ok(Self::Learner),
            _ => Err(ValueError(
                "must be one of admin, manager, employee, instructor, learner",
            )),
        }
    }

    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Manager => "manager",
            Self::Employee => "employee",
            Self::Instructor => "instructor",
            Self::Learner => "learner",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a da@example.com",
            "a@b@c.com",
            "ada@.com",
            "ada\u{202E}@example.com",
            "ada\u{1}@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(DisplayName::parse(" Ada ").unwrap().as_str(), "Ada");
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse(&"x".repeat(101)).is_err());
        assert!(OrganizationName::parse("a\\u{0}b").is_ok());
        assert!(OrganizationName::parse("a\u{0}b").is_err());
        assert!(DisplayName::parse("Ada\u{202E}gpj.exe").is_err());
        assert!(DisplayName::parse("Ada\u{2067}x").is_err());
        assert!(DisplayName::parse("Ada\nLovelace").is_err());
        assert!(OrganizationName::parse("Acme\u{200B}").is_ok());
    }

    #[test]
    fn roles_parse_from_their_names() {
        assert_eq!(Role::parse("manager"), Ok(Role::Manager));
        assert!(Role::parse("root").is_err());
    }
}
