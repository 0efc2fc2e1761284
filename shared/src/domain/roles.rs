//! Roles and permissions: the one matrix, enforced in one place
//! ([`Role::can`]). The 12 roles are those of the design document.

use serde::{Deserialize, Serialize};

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    SuperAdmin,
    Admin,
    LabDirector,
    LabManager,
    SeniorScientist,
    Scientist,
    Technician,
    QualityAssurance,
    ComplianceOfficer,
    Collaborator,
    Viewer,
    Guest,
}

/// A `resource:action` permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Permission {
    #[serde(rename = "instruments:view")]
    InstrumentsView,
    #[serde(rename = "instruments:manage")]
    InstrumentsManage,
    #[serde(rename = "instruments:control")]
    InstrumentsControl,
    #[serde(rename = "runs:view")]
    RunsView,
    #[serde(rename = "runs:create")]
    RunsCreate,
    #[serde(rename = "data:export")]
    DataExport,
    #[serde(rename = "users:manage")]
    UsersManage,
    #[serde(rename = "audit:view")]
    AuditView,
    #[serde(rename = "assistant:execute")]
    AssistantExecute,
    #[serde(rename = "keys:manage")]
    KeysManage,
    #[serde(rename = "webhooks:manage")]
    WebhooksManage,
}

impl Permission {
    pub const ALL: [Permission; 11] = [
        Permission::InstrumentsView,
        Permission::InstrumentsManage,
        Permission::InstrumentsControl,
        Permission::RunsView,
        Permission::RunsCreate,
        Permission::DataExport,
        Permission::UsersManage,
        Permission::AuditView,
        Permission::AssistantExecute,
        Permission::KeysManage,
        Permission::WebhooksManage,
    ];

    /// The `resource:action` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::InstrumentsView => "instruments:view",
            Permission::InstrumentsManage => "instruments:manage",
            Permission::InstrumentsControl => "instruments:control",
            Permission::RunsView => "runs:view",
            Permission::RunsCreate => "runs:create",
            Permission::DataExport => "data:export",
            Permission::UsersManage => "users:manage",
            Permission::AuditView => "audit:view",
            Permission::AssistantExecute => "assistant:execute",
            Permission::KeysManage => "keys:manage",
            Permission::WebhooksManage => "webhooks:manage",
        }
    }
}

/// The permission matrix as a Markdown table (rendered into
/// `docs/PERMISSIONS.md` by `cargo xtask routes`).
pub fn matrix_markdown() -> String {
    let mut out = String::from("| role |");
    for p in Permission::ALL {
        out.push_str(&format!(" `{}` |", p.as_str()));
    }
    out.push_str("\n|---|");
    for _ in Permission::ALL {
        out.push_str(":---:|");
    }
    out.push('\n');
    for role in Role::ALL {
        out.push_str(&format!("| `{}` |", role.as_str()));
        for p in Permission::ALL {
            out.push_str(if role.can(p) { " yes |" } else { " |" });
        }
        out.push('\n');
    }
    out
}

impl Role {
    pub const ALL: [Role; 12] = [
        Role::SuperAdmin,
        Role::Admin,
        Role::LabDirector,
        Role::LabManager,
        Role::SeniorScientist,
        Role::Scientist,
        Role::Technician,
        Role::QualityAssurance,
        Role::ComplianceOfficer,
        Role::Collaborator,
        Role::Viewer,
        Role::Guest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::SuperAdmin => "SUPER_ADMIN",
            Role::Admin => "ADMIN",
            Role::LabDirector => "LAB_DIRECTOR",
            Role::LabManager => "LAB_MANAGER",
            Role::SeniorScientist => "SENIOR_SCIENTIST",
            Role::Scientist => "SCIENTIST",
            Role::Technician => "TECHNICIAN",
            Role::QualityAssurance => "QUALITY_ASSURANCE",
            Role::ComplianceOfficer => "COMPLIANCE_OFFICER",
            Role::Collaborator => "COLLABORATOR",
            Role::Viewer => "VIEWER",
            Role::Guest => "GUEST",
        }
    }

    pub fn parse(value: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == value)
    }

    /// The permission matrix.
    pub fn permissions(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            Role::SuperAdmin | Role::Admin => &[
                InstrumentsView,
                InstrumentsManage,
                InstrumentsControl,
                RunsView,
                RunsCreate,
                DataExport,
                UsersManage,
                AuditView,
                AssistantExecute,
                KeysManage,
                WebhooksManage,
            ],
            Role::LabDirector => &[
                InstrumentsView,
                InstrumentsManage,
                InstrumentsControl,
                RunsView,
                RunsCreate,
                DataExport,
                AssistantExecute,
                KeysManage,
                WebhooksManage,
            ],
            Role::LabManager => &[
                InstrumentsView,
                InstrumentsManage,
                InstrumentsControl,
                RunsView,
                RunsCreate,
                DataExport,
                AssistantExecute,
            ],
            Role::SeniorScientist => &[
                InstrumentsView,
                InstrumentsControl,
                RunsView,
                RunsCreate,
                DataExport,
                AssistantExecute,
            ],
            Role::Scientist => &[
                InstrumentsView,
                RunsView,
                RunsCreate,
                DataExport,
                AssistantExecute,
            ],
            Role::Technician => &[InstrumentsView, InstrumentsControl, RunsView, RunsCreate],
            Role::QualityAssurance | Role::ComplianceOfficer => {
                &[InstrumentsView, RunsView, DataExport, AuditView]
            }
            Role::Collaborator => &[InstrumentsView, RunsView, DataExport],
            Role::Viewer => &[InstrumentsView, RunsView],
            Role::Guest => &[InstrumentsView],
        }
    }

    pub fn can(self, permission: Permission) -> bool {
        self.permissions().contains(&permission)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
            let json = serde_json::to_string(&role).expect("serialize");
            assert_eq!(json, format!("\"{}\"", role.as_str()));
        }
        assert_eq!(Role::parse("admin"), None);
    }

    #[test]
    fn permission_names_match_their_serde_names() {
        for p in Permission::ALL {
            assert_eq!(
                serde_json::to_value(p).expect("serialize"),
                serde_json::json!(p.as_str())
            );
        }
    }

    #[test]
    fn only_managers_manage_instruments() {
        let managers: Vec<_> = Role::ALL
            .into_iter()
            .filter(|r| r.can(Permission::InstrumentsManage))
            .collect();
        assert_eq!(
            managers,
            [
                Role::SuperAdmin,
                Role::Admin,
                Role::LabDirector,
                Role::LabManager
            ]
        );
        assert!(
            Role::ALL
                .into_iter()
                .all(|r| r.can(Permission::InstrumentsView))
        );
    }
}
