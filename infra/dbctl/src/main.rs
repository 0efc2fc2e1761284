//! `dbctl`: `migrate`, `app-password`, `seed`, `seed-lab`. See the library docs.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "dbctl", version, about = "Antevus database operations")]
struct Cli {
    /// Owner / superuser connection string.
    #[arg(long, env = "ANTEVUS_ADMIN_DATABASE_URL", hide_env_values = true)]
    database_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations (a no-op when up to date).
    Migrate,
    /// Let the application role `antevus_app` log in with this password.
    AppPassword {
        #[arg(long, env = "ANTEVUS_APP_DB_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Create an organization and its first admin unless the e-mail exists.
    /// Without a password one is generated and printed once.
    Seed {
        #[arg(long, default_value = "Demo Lab")]
        org_name: String,
        #[arg(long, default_value = "demo-lab")]
        org_slug: String,
        #[arg(long, default_value = "admin@demo.lab")]
        email: String,
        #[arg(long, default_value = "Lab Administrator")]
        name: String,
        #[arg(long, env = "ANTEVUS_ADMIN_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// Development only: a simulated instrument of every type in the
    /// organization, and a join token for a bridge (unless `--bridge` is
    /// already enrolled there). Prints `instrument <type> <id>` lines and
    /// `join-token <token>` or `bridge-known`.
    SeedLab {
        #[arg(long, default_value = "demo-lab")]
        org_slug: String,
        #[arg(long)]
        bridge: Option<uuid::Uuid>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut client = dbctl::connect(&cli.database_url).await?;
    match cli.command {
        Command::Migrate => {
            let applied = dbctl::migrate(&mut client).await?;
            println!("migrations: {applied} applied");
        }
        Command::AppPassword { password } => {
            dbctl::set_app_password(&client, &password).await?;
            println!("application role password set");
        }
        Command::Seed {
            org_name,
            org_slug,
            email,
            name,
            password,
        } => {
            let generated = password.is_none();
            let password = match password {
                Some(p) => p,
                None => dbctl::random_secret(18)?,
            };
            let spec = dbctl::SeedSpec {
                org_name: &org_name,
                org_slug: &org_slug,
                email: &email,
                name: &name,
                role: shared::auth::Role::Admin,
                password: &password,
            };
            match dbctl::seed(&mut client, &spec).await? {
                dbctl::Seeded::Created {
                    organization_id, ..
                } => {
                    println!(
                        "seeded organization {org_slug} ({organization_id}) with admin {email}"
                    );
                    if generated {
                        println!("admin password (shown once): {password}");
                    }
                }
                dbctl::Seeded::AlreadyThere => println!("{email} already exists; nothing seeded"),
            }
        }
        Command::SeedLab { org_slug, bridge } => {
            let lab = dbctl::seed_lab(&mut client, &org_slug, bridge).await?;
            for (kind, id) in lab.instruments {
                println!("instrument {kind} {id}");
            }
            match lab.join_token {
                Some(token) => println!("join-token {token}"),
                None => println!("bridge-known"),
            }
        }
    }
    Ok(())
}
