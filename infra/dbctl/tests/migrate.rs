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
                   AND t.table_name NOT IN ('organizations', 'refinery_schema_history')
                   AND NOT EXISTS (SELECT 1 FROM information_schema.columns c
                                   WHERE c.table_name = t.table_name AND c.column_name = 'organization_id')",
                &[],
            )
            .await?
            .get(0);
        anyhow::ensure!(tenant_tables_without_org == 0, "every table carries organization_id");
        anyhow::Ok(())
    }
    .await;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    result
}
