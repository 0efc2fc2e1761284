//! The web application (`web/`): its build (the typed client checked
//! against `docs/openapi.json`, the type check, Vite) and its unit tests.

use std::process::Command;

use crate::util::{root, run};

/// `npm run build` in `web/`: fails when the generated client is stale
/// or the app does not type-check; writes `web/dist`.
pub fn build() -> anyhow::Result<()> {
    run(Command::new("npm")
        .args(["run", "--silent", "build"])
        .current_dir(root().join("web")))
}

/// The app's own logic, under vitest.
pub fn unit_tests() -> anyhow::Result<()> {
    run(Command::new("npm")
        .args(["run", "--silent", "test"])
        .current_dir(root().join("web")))
}
