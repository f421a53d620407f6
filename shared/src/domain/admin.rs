//! What an administrator (through the API) or the operator (through fogctl) does to a user
//! account, and the username prefix the user list filters by.

use std::fmt;

use super::{AuditEventType, USERNAME_CHARS, User, is_username_char};

/// One of a user's two flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserFlag {
    Active,
    Admin,
}

impl UserFlag {
    pub fn of(self, user: &User) -> bool {
        match self {
            Self::Active => user.is_active,
            Self::Admin => user.is_admin,
        }
    }
}

/// An action on a user account: a flag set, or the username's login lockout cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserAction {
    Deactivate,
    Activate,
    Promote,
    Demote,
    Unlock,
}

impl UserAction {
    pub const ALL: [Self; 5] = [
        Self::Deactivate,
        Self::Activate,
        Self::Promote,
        Self::Demote,
        Self::Unlock,
    ];

    /// The action as a path names it (`POST /api/admin/users/{id}/deactivate`), exactly.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|action| action.as_str() == raw)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deactivate => "deactivate",
            Self::Activate => "activate",
            Self::Promote => "promote",
            Self::Demote => "demote",
            Self::Unlock => "unlock",
        }
    }

    /// The event that records it.
    pub fn event_type(self) -> AuditEventType {
        match self {
            Self::Deactivate => AuditEventType::UserDeactivated,
            Self::Activate => AuditEventType::UserActivated,
            Self::Promote => AuditEventType::UserPromoted,
            Self::Demote => AuditEventType::UserDemoted,
            Self::Unlock => AuditEventType::UserUnlocked,
        }
    }

    /// The flag it sets and the value it sets it to; `None` for `unlock`.
    pub fn flag(self) -> Option<(UserFlag, bool)> {
        match self {
            Self::Deactivate => Some((UserFlag::Active, false)),
            Self::Activate => Some((UserFlag::Active, true)),
            Self::Promote => Some((UserFlag::Admin, true)),
            Self::Demote => Some((UserFlag::Admin, false)),
            Self::Unlock => None,
        }
    }

    /// Whether an administrator may do it to their own account: not deactivate or demote it, so
    /// that the last administrator is never lost by accident.
    pub fn allowed_on_oneself(self) -> bool {
        !matches!(self, Self::Deactivate | Self::Demote)
    }

    /// Whether it would change nothing of `user`: its flag already has the value. An unlock
    /// always clears the lockout (whether there was one is not read first).
    pub fn changes_nothing(self, user: &User) -> bool {
        self.flag()
            .is_some_and(|(flag, value)| flag.of(user) == value)
    }

    /// `user` as the action leaves it.
    pub fn applied_to(self, mut user: User) -> User {
        match self.flag() {
            Some((UserFlag::Active, value)) => user.is_active = value,
            Some((UserFlag::Admin, value)) => user.is_admin = value,
            None => {}
        }
        user
    }
}

impl fmt::Display for UserAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The user list's `q`: the start of a username, in the usernames' alphabet (letters, digits, `_`
/// and `-`), 1-50 characters, lower-cased as usernames are stored.
pub fn username_prefix(raw: &str) -> Result<String, String> {
    let length = raw.chars().count();
    if !(1..=*USERNAME_CHARS.end()).contains(&length) {
        return Err(format!(
            "must be 1 to {} characters long",
            USERNAME_CHARS.end()
        ));
    }
    if !raw.chars().all(is_username_char) {
        return Err("may contain only letters, digits, _ and -".into());
    }
    Ok(raw.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_through_their_names_exactly() {
        for action in UserAction::ALL {
            assert_eq!(UserAction::parse(action.as_str()), Some(action));
        }
        for unknown in ["Deactivate", "delete", "", "unlock "] {
            assert_eq!(UserAction::parse(unknown), None, "{unknown:?}");
        }
    }

    #[test]
    fn only_deactivation_and_demotion_are_refused_on_oneself() {
        let refused: Vec<_> = UserAction::ALL
            .into_iter()
            .filter(|action| !action.allowed_on_oneself())
            .collect();
        assert_eq!(refused, [UserAction::Deactivate, UserAction::Demote]);
    }

    #[test]
    fn prefixes_are_lower_cased_usernames_of_one_character_or_more() {
        assert_eq!(username_prefix("Al").unwrap(), "al");
        assert_eq!(username_prefix("a").unwrap(), "a");
        assert_eq!(username_prefix(&"x".repeat(50)).unwrap(), "x".repeat(50));
        assert_eq!(username_prefix("Refresh_U").unwrap(), "refresh_u");
        assert_eq!(username_prefix("-").unwrap(), "-");
        for bad in ["", "al ice", "al.", "é", "a%", &"x".repeat(51)] {
            assert!(username_prefix(bad).is_err(), "{bad:?}");
        }
    }
}
