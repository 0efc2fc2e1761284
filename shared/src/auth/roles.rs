//! Roles and permissions: the one matrix, enforced in one place
//! ([`Role::can`]). The 12 roles are those of the design document.

use serde::{Deserialize, Serialize};

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
