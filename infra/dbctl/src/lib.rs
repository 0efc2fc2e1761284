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
    set_password(client, "antevus_app", password).await
}

/// Lets `role` log in with `password`. The password never reaches the
/// server: it is hashed here into a SCRAM-SHA-256 verifier (as `psql`'s
/// `\password` does), so the statement that statement logging or
/// `pg_stat_statements` may keep holds only the verifier.
pub async fn set_password(client: &Client, role: &str, password: &str) -> anyhow::Result<()> {
    let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
    // ALTER ROLE takes no parameters; the verifier is base64 and `$`/`:`,
    // the role an identifier, both quoted anyway.
    let literal = verifier.replace('\'', "''");
    let role = role.replace('"', "\"\"");
    client
        .batch_execute(&format!("ALTER ROLE \"{role}\" LOGIN PASSWORD '{literal}'"))
        .await
        .context("cannot set the role's password")?;
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

/// A simulated lab for local development: one instrument of every type in
/// an organization, and a way for a bridge to join it.
#[derive(Debug)]
pub struct Lab {
    /// `(type, id)` of each simulated instrument.
    pub instruments: Vec<(String, uuid::Uuid)>,
    /// A fresh single-use join token (valid one hour), unless the bridge
    /// asked about is already enrolled in the organization.
    pub join_token: Option<String>,
}

/// Makes sure `org_slug` has a simulated instrument of every type
/// (serial `SIM-<type>`), and issues a join token unless `bridge` is one of
/// its enrolled bridges. Run only against a development database: it
/// writes directly, as the seed does.
pub async fn seed_lab(
    client: &mut Client,
    org_slug: &str,
    bridge: Option<uuid::Uuid>,
) -> anyhow::Result<Lab> {
    let tx = client.transaction().await?;
    let org = tx
        .query_opt(
            "SELECT o.id, (SELECT u.id FROM users u WHERE u.organization_id = o.id AND u.role = 'ADMIN' \
                           ORDER BY u.created_at LIMIT 1) \
               FROM organizations o WHERE o.slug = $1",
            &[&org_slug],
        )
        .await?
        .ok_or_else(|| anyhow::anyhow!("no organization {org_slug}: seed it first"))?;
    let organization_id: uuid::Uuid = org.get(0);
    let admin: Option<uuid::Uuid> = org.get(1);
    let admin = admin.ok_or_else(|| anyhow::anyhow!("{org_slug} has no admin"))?;
    let mut instruments = Vec::new();
    for kind in shared::domain::InstrumentType::ALL {
        let kind = kind.as_str();
        let serial = format!("SIM-{kind}");
        let name = format!("Simulated {}", kind.replace('_', " "));
        let row = tx
            .query_one(
                "WITH found AS (SELECT id FROM instruments WHERE organization_id = $1 AND serial_number = $2 \
                                 AND deleted_at IS NULL), \
                      made AS (INSERT INTO instruments (id, organization_id, name, type, status, serial_number, \
                                                        model, location, created_by) \
                               SELECT gen_random_uuid(), $1, $3, $4, 'offline', $2, 'Simulator', 'Local lab', $5 \
                               WHERE NOT EXISTS (SELECT 1 FROM found) RETURNING id) \
                 SELECT id FROM found UNION ALL SELECT id FROM made",
                &[&organization_id, &serial, &name, &kind, &admin],
            )
            .await?;
        instruments.push((kind.to_owned(), row.get(0)));
    }
    let known = match bridge {
        Some(bridge) => tx
            .query_opt(
                "SELECT 1 FROM bridges b JOIN api_keys k ON k.id = b.api_key_id \
                  WHERE b.id = $1 AND b.organization_id = $2 AND k.is_active",
                &[&bridge, &organization_id],
            )
            .await?
            .is_some(),
        None => false,
    };
    let join_token = if known {
        None
    } else {
        let token = format!("bj_{}", random_secret(32)?);
        let hash = <sha2::Sha256 as sha2::Digest>::digest(token.as_bytes()).to_vec();
        tx.execute(
            "INSERT INTO bridge_join_tokens (id, organization_id, token_hash, name, created_by, expires_at) \
             VALUES (gen_random_uuid(), $1, $2, 'Local simulated lab', $3, now() + interval '1 hour')",
            &[&organization_id, &hash, &admin],
        )
        .await?;
        Some(token)
    };
    tx.commit().await?;
    Ok(Lab {
        instruments,
        join_token,
    })
}
