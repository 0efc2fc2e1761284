//! A local PostgreSQL cluster in `.antevus/pg` on port 54329, run as the
//! `postgres` user when we are root (PostgreSQL refuses to run as root).
//! Password authentication (scram-sha-256) over TCP, so wrong passwords fail.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::secrets::Secrets;
use crate::util::{is_root, output, root, run};

pub const PORT: u16 = 54329;

fn bin_dir() -> anyhow::Result<PathBuf> {
    let base = PathBuf::from("/usr/lib/postgresql");
    let mut versions: Vec<u32> = fs::read_dir(&base)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .filter(|v: &u32| base.join(v.to_string()).join("bin/initdb").exists())
                .collect()
        })
        .unwrap_or_default();
    versions.sort_unstable();
    match versions.last() {
        Some(v) => Ok(base.join(v.to_string()).join("bin")),
        None => bail!(
            "PostgreSQL server binaries not found under /usr/lib/postgresql; run `cargo xtask setup`"
        ),
    }
}

/// Whether the server binaries are installed.
pub fn installed() -> bool {
    bin_dir().is_ok()
}

fn dir() -> PathBuf {
    root().join(".antevus/pg")
}

/// The server's log (the benchmark reads `auto_explain` plans from it).
pub fn log_file() -> PathBuf {
    dir().join("postgres.log")
}

fn as_postgres(program: PathBuf) -> Command {
    if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn chown_postgres(path: &PathBuf) -> anyhow::Result<()> {
    if is_root() {
        run(Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(path))?;
    }
    Ok(())
}

/// Superuser connection string to database `db`.
pub fn admin_url(secrets: &Secrets, db: &str) -> String {
    format!(
        "postgres://postgres:{}@127.0.0.1:{PORT}/{db}",
        secrets.get("PG_SUPERUSER_PASSWORD")
    )
}

/// The application's role: what the functions connect as.
pub const APP_ROLE: &str = "antevus_app";

/// Application-role connection string to database `db`.
pub fn app_url(secrets: &Secrets, db: &str) -> String {
    format!(
        "postgres://{APP_ROLE}:{}@127.0.0.1:{PORT}/{db}",
        secrets.get("APP_DB_PASSWORD")
    )
}

/// Initialises the cluster if needed and starts it if it is not running.
pub fn start(secrets: &Secrets) -> anyhow::Result<()> {
    let bin = bin_dir()?;
    let base = dir();
    let data = base.join("data");
    let socket = base.join("sock");
    if !data.join("PG_VERSION").exists() {
        fs::create_dir_all(&data)?;
        fs::create_dir_all(&socket)?;
        fs::set_permissions(&data, fs::Permissions::from_mode(0o700))?;
        let pwfile = base.join("pwfile");
        fs::write(&pwfile, secrets.get("PG_SUPERUSER_PASSWORD"))?;
        fs::set_permissions(&pwfile, fs::Permissions::from_mode(0o600))?;
        chown_postgres(&base)?;
        let result = run(as_postgres(bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .arg("--no-instructions"));
        let _ = fs::remove_file(&pwfile);
        result.context("initdb failed")?;
    }
    let running = as_postgres(bin.join("pg_ctl"))
        .arg("-D")
        .arg(&data)
        .arg("status")
        .output()?
        .status
        .success();
    if running {
        return Ok(());
    }
    // TLS with the local test CA's certificate (the server's own copy, which
    // must belong to postgres): the proxy's tests connect with each mode.
    let certificates = crate::tls::ensure()?;
    let tls = base.join("tls");
    fs::create_dir_all(&tls)?;
    for name in ["server.pem", "server.key"] {
        fs::copy(certificates.join(name), tls.join(name))?;
    }
    fs::set_permissions(tls.join("server.key"), fs::Permissions::from_mode(0o600))?;
    chown_postgres(&base)?;
    run(as_postgres(bin.join("pg_ctl"))
        .arg("-D")
        .arg(&data)
        .arg("-l")
        .arg(base.join("postgres.log"))
        .arg("-o")
        .arg(format!(
            "-c listen_addresses=127.0.0.1 -p {PORT} -c unix_socket_directories={} -c max_connections=300 \
             -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
            socket.display(),
            tls.join("server.pem").display(),
            tls.join("server.key").display()
        ))
        .args(["-w", "-t", "60", "start"]))
    .context("PostgreSQL did not start; see .antevus/pg/postgres.log")
}

/// Stops the cluster if it runs.
pub fn stop() -> anyhow::Result<()> {
    let bin = bin_dir()?;
    let data = dir().join("data");
    if data.join("postmaster.pid").exists() {
        run(as_postgres(bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["-m", "fast", "-w", "stop"]))?;
    }
    Ok(())
}

/// Runs `psql` with the superuser against `db`.
pub fn psql(secrets: &Secrets, db: &str, sql: &str) -> anyhow::Result<String> {
    let bin = bin_dir()?;
    output(
        Command::new(bin.join("psql"))
            .arg(admin_url(secrets, db))
            .args(["-v", "ON_ERROR_STOP=1", "-tAc", sql]),
    )
    .ok_or_else(|| anyhow::anyhow!("psql failed: {sql}"))
}
