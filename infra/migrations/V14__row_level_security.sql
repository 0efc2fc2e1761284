-- Row-level security, part 1: the tables the application reaches only
-- through an organization scope. Every transaction of a scope starts with
-- set_config('app.organization_id', <organization>, true); a statement
-- without that setting sees no row of these tables and can write none.
--
-- This stops a forgotten filter. It does not stop someone who holds the
-- database credential: they can set any organization.
--
-- The tables also read before anyone is authenticated (users, api_keys,
-- sessions, password_resets, invitations, bridge_join_tokens, rate_limits,
-- email_outbox, audit_events) follow with their narrow SECURITY DEFINER
-- lookups.

-- The organization of the current transaction, or NULL when none is set.
CREATE FUNCTION app_organization() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT nullif(current_setting('app.organization_id', true), '')::uuid
$$;

ALTER TABLE organizations ENABLE ROW LEVEL SECURITY;
CREATE POLICY organization_scope ON organizations
    USING (id = app_organization())
    WITH CHECK (id = app_organization());

DO $$
DECLARE
    tenant text;
BEGIN
    FOREACH tenant IN ARRAY ARRAY[
        'instruments', 'runs', 'maintenance', 'instrument_commands', 'run_data',
        'run_data_chunks', 'readings', 'run_signatures', 'bridges', 'bridge_streams',
        'chat_threads', 'messages', 'webhooks', 'webhook_deliveries',
        'audit_checkpoints', 'audit_chain_heads', 'audit_retention_horizons'
    ] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', tenant);
        EXECUTE format(
            'CREATE POLICY organization_scope ON %I '
            'USING (organization_id = app_organization()) '
            'WITH CHECK (organization_id = app_organization())',
            tenant
        );
    END LOOP;
END $$;
