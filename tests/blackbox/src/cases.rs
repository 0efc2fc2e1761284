//! The harness of the cases: each is an `async fn(&TestApp) ->
//! anyhow::Result<()>` and runs on every host. A module per area lists its
//! own with `cases!`; [`trials`] gathers them all.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use libtest_mimic::Trial;

use crate::client::TestApp;

pub(crate) type CaseFn =
    for<'a> fn(&'a TestApp) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + 'a>>;

/// Declares the module's cases (`CASES`), in the order they are listed.
#[macro_export]
macro_rules! cases {
    ($($name:ident),+ $(,)?) => {
        pub(crate) const CASES: &[(&str, $crate::cases::CaseFn)] = &[$((stringify!($name), |app| Box::pin($name(app)))),+];
    };
}

/// Every area's cases.
const AREAS: &[&[(&str, CaseFn)]] = &[
    crate::envelope::CASES,
    crate::headers::CASES,
    crate::sessions::CASES,
    crate::instruments::CASES,
    crate::limits::CASES,
    crate::password_reset::CASES,
    crate::api_keys::CASES,
    crate::roles::CASES,
    crate::accounts::CASES,
    crate::mfa::CASES,
    crate::lab::CASES,
    crate::runs::CASES,
    crate::maintenance::CASES,
    crate::data::CASES,
    crate::audit::CASES,
    crate::walk::CASES,
    crate::webhooks::CASES,
    crate::watch::CASES,
    crate::bridges::CASES,
    crate::ingest::CASES,
    crate::live::CASES,
    crate::hub::CASES,
    crate::tls::CASES,
    crate::isolation::CASES,
    crate::surface::CASES,
    crate::web::CASES,
];

/// Cases that run alone, no other case meanwhile: the scheduled retention
/// job and the watch work on every organization of the shared database (a
/// record in another case's chain would break that case's counts).
const ALONE: &[&str] = &[
    "scheduled_retention_covers_every_organization",
    "the_watch_publishes_what_time_brings_once",
];

/// Taken for writing by a case of [`ALONE`], for reading by every other.
static EXCLUSION: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Every case as a trial; without an app (listing only) they are listed but not run.
pub fn trials(app: Option<Arc<TestApp>>, runtime: tokio::runtime::Handle) -> Vec<Trial> {
    AREAS
        .iter()
        .flat_map(|area| area.iter())
        .map(|(name, case)| {
            let app = app.clone();
            let runtime = runtime.clone();
            let case = *case;
            Trial::test(*name, move || {
                let app = app.ok_or("no test stack")?;
                runtime
                    .block_on(async {
                        if ALONE.contains(name) {
                            let _alone = EXCLUSION.write().await;
                            case(&app).await
                        } else {
                            let _shared = EXCLUSION.read().await;
                            case(&app).await
                        }
                    })
                    .map_err(|e| format!("{e:#}").into())
            })
        })
        .collect()
}
