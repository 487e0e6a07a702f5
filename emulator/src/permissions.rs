//! Microsoft Graph application permissions (app roles) the emulator knows by name.
//!
//! Real Graph publishes several hundred; the emulator accepts any well-formed name and
//! describes the common ones the way Microsoft's consent page does.

/// (name, the text Microsoft's admin-consent page shows for it)
const CATALOGUE: &[(&str, &str)] = &[
    ("User.Read.All", "Read all users' full profiles"),
    ("User.ReadBasic.All", "Read all users' basic profiles"),
    (
        "User.ReadWrite.All",
        "Read and write all users' full profiles",
    ),
    ("Organization.Read.All", "Read organization information"),
    (
        "Organization.ReadWrite.All",
        "Read and write organization information",
    ),
    ("Directory.Read.All", "Read directory data"),
    ("Directory.ReadWrite.All", "Read and write directory data"),
    ("Group.Read.All", "Read all groups"),
    ("GroupMember.Read.All", "Read all group memberships"),
    ("Application.Read.All", "Read all applications"),
    ("AuditLog.Read.All", "Read all audit log data"),
    ("Mail.Read", "Read mail in all mailboxes"),
    ("Calendars.Read", "Read calendars in all mailboxes"),
    ("Files.Read.All", "Read files in all site collections"),
    ("Sites.Read.All", "Read items in all site collections"),
];

/// The default permissions of the emulated app registration.
pub const DEFAULT_REQUIRED: &[&str] = &["User.Read.All", "Organization.Read.All"];

/// Roles that let an app read `GET /v1.0/organization` (least privileged first).
pub const READ_ORGANIZATION: &[&str] = &[
    "Organization.Read.All",
    "Organization.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

/// Roles that let an app read `GET /v1.0/users`.
pub const READ_USERS: &[&str] = &[
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

/// What the consent page says a permission allows.
pub fn describe(name: &str) -> String {
    CATALOGUE
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, d)| (*d).to_owned())
        .unwrap_or_else(|| format!("Application permission {name}"))
}

/// A permission name is dot-separated words of ASCII letters, as Graph's are
/// (`User.Read.All`, `Mail.Read`).
pub fn is_well_formed(name: &str) -> bool {
    name.len() <= 100
        && name.contains('.')
        && name
            .split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphabetic()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_names() {
        assert!(is_well_formed("User.Read.All"));
        assert!(is_well_formed("Mail.Read"));
        assert!(!is_well_formed("User"));
        assert!(!is_well_formed("User..All"));
        assert!(!is_well_formed("User.Read.All<script>"));
    }

    #[test]
    fn describes_known_and_unknown_permissions() {
        assert_eq!(describe("user.read.all"), "Read all users' full profiles");
        assert_eq!(describe("Foo.Bar"), "Application permission Foo.Bar");
    }
}
