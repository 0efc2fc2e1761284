//! Migrations apply once, re-running is a no-op, and the application role
//! has the privileges the schema promises (no UPDATE/DELETE on audit rows).

#[tokio::test]
async fn migrations_apply_once_and_rerun_is_a_noop() -> anyhow::Result<()> {
    let server = std::env::var("ANTEVUS_TEST_PG_URL").map_err(|_| {
        anyhow::anyhow!("ANTEVUS_TEST_PG_URL is not set: run the tests through `cargo xtask test`")
    })?;
    let (base, _) = server
        .rsplit_once('/')
        .ok_or_else(|| anyhow::anyhow!("URL must end with /<database>"))?;
    let name = format!("antevus_migrate_test_{}", std::process::id());
    let admin = dbctl::connect(&server).await?;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
        .await?;
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await?;
    let url = format!("{base}/{name}");
    let result = async {
        let mut client = dbctl::connect(&url).await?;
        let first = dbctl::migrate(&mut client).await?;
        anyhow::ensure!(first >= 1, "the first run applies every migration");
        let second = dbctl::migrate(&mut client).await?;
        anyhow::ensure!(second == 0, "re-running applies nothing, applied {second}");
        let privileges = client
            .query_one(
                "SELECT has_table_privilege('antevus_app', 'audit_events', 'INSERT'),
                        has_table_privilege('antevus_app', 'audit_events', 'UPDATE'),
                        has_table_privilege('antevus_app', 'audit_events', 'DELETE'),
                        has_table_privilege('antevus_app', 'instruments', 'UPDATE'),
                        has_table_privilege('antevus_app', 'refinery_schema_history', 'INSERT')",
                &[],
            )
            .await?;
        let got: Vec<bool> = (0..5).map(|i| privileges.get(i)).collect();
        anyhow::ensure!(got == [true, false, false, true, false], "privileges of antevus_app: {got:?}");
        let tenant_tables_without_org: i64 = client
            .query_one(
                "SELECT count(*) FROM information_schema.tables t
                 WHERE t.table_schema = 'public' AND t.table_type = 'BASE TABLE'
                   AND t.table_name NOT IN ('organizations', 'refinery_schema_history', 'signup_requests')
                   AND NOT EXISTS (SELECT 1 FROM information_schema.columns c
                                   WHERE c.table_name = t.table_name AND c.column_name = 'organization_id')",
                &[],
            )
            .await?
            .get(0);
        anyhow::ensure!(tenant_tables_without_org == 0, "every table carries organization_id");
        // A signup request precedes its organization: the application's
        // role holds no privilege on it (only V19's functions reach it).
        let request_privileges: Vec<bool> = client
            .query_one(
                "SELECT has_table_privilege('antevus_app', 'signup_requests', 'SELECT'),
                        has_table_privilege('antevus_app', 'signup_requests', 'INSERT'),
                        has_table_privilege('antevus_app', 'signup_requests', 'DELETE')",
                &[],
            )
            .await
            .map(|row| (0..3).map(|i| row.get(i)).collect())?;
        anyhow::ensure!(request_privileges == [false; 3], "signup_requests: {request_privileges:?}");
        anyhow::Ok(())
    }
    .await;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    result
}

#[tokio::test]
async fn a_password_reaches_the_server_only_as_a_scram_verifier() -> anyhow::Result<()> {
    let server = std::env::var("ANTEVUS_TEST_PG_URL").map_err(|_| {
        anyhow::anyhow!("ANTEVUS_TEST_PG_URL is not set: run the tests through `cargo xtask test`")
    })?;
    let admin = dbctl::connect(&server).await?;
    let role = format!("antevus_pw_test_{}", std::process::id());
    admin
        .batch_execute(&format!("DROP ROLE IF EXISTS {role}; CREATE ROLE {role}"))
        .await?;
    let password = "it's a secret: 'quoted' $and$ long";
    let result = async {
        dbctl::set_password(&admin, &role, password).await?;
        let stored: String = admin
            .query_one(
                "SELECT rolpassword FROM pg_authid WHERE rolname = $1",
                &[&role],
            )
            .await?
            .get(0);
        anyhow::ensure!(stored.starts_with("SCRAM-SHA-256$4096:"), "{stored}");
        anyhow::ensure!(!stored.contains("secret"), "{stored}");
        // The role logs in with the password.
        let mut config: tokio_postgres::Config = server.parse()?;
        config.user(&role);
        config.password(password);
        let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        let me: String = client
            .query_one("SELECT current_user::text", &[])
            .await?
            .get(0);
        anyhow::ensure!(me == role, "{me}");
        anyhow::Ok(())
    }
    .await;
    admin
        .batch_execute(&format!("DROP ROLE IF EXISTS {role}"))
        .await?;
    result
}
