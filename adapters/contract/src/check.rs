//! What [`crate::Source::check`] reports: the facts a user needs before a long dump starts.

use serde::{Deserialize, Serialize};

use crate::ServerInfo;

/// The outcome of [`crate::Source::check`] on a database that could be reached: the server,
/// the size to expect, and every problem that would make a dump fail.
///
/// A check with no [`problems`](Self::problems) means the dump's own start would pass as
/// well: each adapter checks the privileges and objects its dump really needs, by the same
/// queries or commands the dump sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceCheck {
    /// Engine, version and TLS of the connection that checked, and notes for the user.
    pub server: ServerInfo,
    /// Estimated size in bytes of what the dump will read (uncompressed); `None` when the
    /// engine cannot say. Each adapter documents its source (PostgreSQL: `pg_table_size` of
    /// the dumped tables; MySQL: `DATA_LENGTH`; Redis: `used_memory_dataset`).
    pub size_bytes: Option<u64>,
    /// What would make the dump fail, each naming its object. Empty: the dump can start.
    pub problems: Vec<CheckProblem>,
}

impl SourceCheck {
    /// Whether nothing would stop the dump.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One reason a dump would fail: the object, the privilege missing on it (if it is a
/// privilege), and a sentence saying what the dump needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckProblem {
    /// The object, as the dump's errors name it: `table public.payroll`, `schema hidden`,
    /// ``database `shop` ``, `command DUMP`, `snapshot`.
    pub object: String,
    /// The privilege (or ACL command) missing on it, in the engine's words: `SELECT`,
    /// `USAGE`, `SHOW VIEW`, `DUMP`; `None` when the problem is not a privilege (an object the
    /// engine cannot export, a snapshot the server refuses).
    pub privilege: Option<String>,
    /// What is wrong and what the dump needs, one line, never a secret.
    pub message: String,
    /// The engine refuses the object: it cannot export it faithfully (an
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) error, such as a dependency
    /// cycle it cannot break), so no privilege would help.
    #[serde(default)]
    pub refused: bool,
}

impl CheckProblem {
    /// A missing `privilege` on `object`.
    pub fn privilege(
        object: impl Into<String>,
        privilege: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            object: object.into(),
            privilege: Some(privilege.into()),
            message: message.into(),
            refused: false,
        }
    }

    /// A problem with `object` that is not a missing privilege.
    pub fn other(object: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            object: object.into(),
            privilege: None,
            message: message.into(),
            refused: false,
        }
    }

    /// An `object` the engine refuses to export (see [`CheckProblem::refused`]).
    pub fn refused(object: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            refused: true,
            ..Self::other(object, message)
        }
    }
}

impl std::fmt::Display for CheckProblem {
    /// `table public.payroll: SELECT missing: the role may not read it`, or `object: message`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.privilege {
            Some(p) => write!(f, "{}: {p} missing: {}", self.object, self.message),
            None => write!(f, "{}: {}", self.object, self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_names_object_and_privilege() {
        let p = CheckProblem::privilege("table public.t", "SELECT", "the role may not read it");
        assert_eq!(
            p.to_string(),
            "table public.t: SELECT missing: the role may not read it"
        );
        let p = CheckProblem::other("snapshot", "the server refused it");
        assert_eq!(p.to_string(), "snapshot: the server refused it");
        assert!(!p.refused);
        let p = CheckProblem::refused("public.f()", "circular dependency");
        assert_eq!(p.to_string(), "public.f(): circular dependency");
        assert!(p.refused && p.privilege.is_none());
    }
}
