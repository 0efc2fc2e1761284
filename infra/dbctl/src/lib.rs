//! Database operations, used by the dev runner, the test harness and
//! deployments: apply the versioned, checksummed migrations under
//! `infra/migrations` (refinery), set the application role's password, and
//! seed an organization with its first admin.

use anyhow::Context as _;
use base64::Engine as _;
use tokio_postgres::{Client, NoTls};

mod embedded {
    refinery::embed_migrations!("../migrations");
}

/// Connects with a superuser / owner connection string.
pub async fn connect(database_url: &str) -> anyhow::Result<Client> {
    let (client, connection) = tokio_postgres::connect(database_url, NoTls)
        .await
        .context("cannot connect to PostgreSQL")?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("dbctl: connection error: {e}");
        }
    });
    Ok(client)
}

/// Applies pending migrations; returns how many were applied. Re-running is
/// a no-op; a changed, already-applied migration is an error (checksum).
pub async fn migrate(client: &mut Client) -> anyhow::Result<usize> {
    let report = embedded::migrations::runner()
        .set_abort_divergent(true)
        .set_abort_missing(true)
        .run_async(client)
        .await
        .context("migration failed")?;
    Ok(report.applied_migrations().len())
}

/// Lets the application role log in with `password`.
pub async fn set_app_password(client: &Client, password: &str) -> anyhow::Result<()> {
    // ALTER ROLE takes no parameters; quote the literal ourselves.
    let literal = password.replace('\'', "''");
    client
        .batch_execute(&format!(
            "ALTER ROLE antevus_app LOGIN PASSWORD '{literal}'"
        ))
        .await
        .context("cannot set the application role's password")?;
    Ok(())
}

/// A random URL-safe secret of `bytes` bytes of entropy.
pub fn random_secret(bytes: usize) -> anyhow::Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf))
}

/// What [`seed`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Seeded {
    Created {
        organization_id: uuid::Uuid,
        user_id: uuid::Uuid,
    },
    AlreadyThere,
}

/// An organization and its first user.
pub struct SeedSpec<'a> {
    pub org_name: &'a str,
    pub org_slug: &'a str,
    pub email: &'a str,
    pub name: &'a str,
    pub role: shared::auth::Role,
    pub password: &'a str,
}

/// Creates the organization and its admin unless the e-mail already exists.
pub async fn seed(client: &mut Client, spec: &SeedSpec<'_>) -> anyhow::Result<Seeded> {
    let email = shared::domain::Email::parse(spec.email).map_err(anyhow::Error::msg)?;
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let hash = shared::auth::password::hash(spec.password, salt)?;
    let tx = client.transaction().await?;
    if tx
        .query_opt("SELECT 1 FROM users WHERE email = $1", &[&email.as_str()])
        .await?
        .is_some()
    {
        return Ok(Seeded::AlreadyThere);
    }
    let org = tx
        .query_one(
            "INSERT INTO organizations (name, slug) VALUES ($1, $2)
             ON CONFLICT (slug) DO UPDATE SET name = organizations.name RETURNING id",
            &[&spec.org_name, &spec.org_slug],
        )
        .await?;
    let organization_id: uuid::Uuid = org.get(0);
    let user = tx
        .query_one(
            "INSERT INTO users (organization_id, email, password_hash, name, role) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[&organization_id, &email.as_str(), &hash, &spec.name, &spec.role.as_str()],
        )
        .await?;
    let user_id: uuid::Uuid = user.get(0);
    tx.commit().await?;
    Ok(Seeded::Created {
        organization_id,
        user_id,
    })
}
