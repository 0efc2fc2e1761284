-- Retention (the design document's table: audit logs 7 years, run data
-- 5 years, user sessions 30 days, rate limits 24 hours; the periods are the
-- functions' configuration). Audit events only ever leave from the start
-- of a chain, never younger than 7 years, and only through
-- audit_retention_purge, which leaves a horizon the verifier starts from.

-- Where a chain now starts: the last purged event's sequence and hash,
-- which must match a signed checkpoint made before the purge.
CREATE TABLE audit_retention_horizons (
    chain_id         uuid PRIMARY KEY,
    organization_id  uuid REFERENCES organizations (id),
    sequence         bigint NOT NULL,
    hash             bytea NOT NULL,
    purged_at        timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT ON audit_retention_horizons TO antevus_app;

-- Audit rows stay append-only, except a purge's deletions of events older
-- than seven years.
CREATE OR REPLACE FUNCTION audit_events_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'audit_events'
       AND current_setting('antevus.audit_purge', true) = 'on'
       AND OLD.created_at < now() - interval '2555 days' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

-- Removes the events of `p_chain` up to `p_through`, if every one of them
-- is older than `p_days` (at least 2555) and a signed checkpoint names the
-- last of them; the head is never removed. Returns how many went.
CREATE FUNCTION audit_retention_purge(p_chain uuid, p_days integer, p_through bigint)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    cutoff timestamptz;
    head bigint;
    horizon bigint;
    last_hash bytea;
    removed bigint;
BEGIN
    IF p_days < 2555 THEN
        RAISE EXCEPTION 'audit events are kept at least 2555 days (7 years), not %', p_days
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    cutoff := now() - make_interval(days => p_days);
    SELECT sequence INTO head FROM audit_chain_heads WHERE chain_id = p_chain FOR UPDATE;
    SELECT sequence INTO horizon FROM audit_retention_horizons WHERE chain_id = p_chain;
    IF head IS NULL OR p_through >= head OR p_through <= coalesce(horizon, 0) THEN
        RETURN 0;
    END IF;
    IF EXISTS (SELECT 1 FROM audit_events WHERE chain_id = p_chain AND sequence <= p_through
                                            AND created_at >= cutoff) THEN
        RAISE EXCEPTION 'events up to % are not all older than % days', p_through, p_days
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT e.hash INTO last_hash FROM audit_events e
     WHERE e.chain_id = p_chain AND e.sequence = p_through
       AND EXISTS (SELECT 1 FROM audit_checkpoints c WHERE c.chain_id = p_chain
                      AND c.sequence = p_through AND c.hash = e.hash);
    IF last_hash IS NULL THEN
        RAISE EXCEPTION 'no signed checkpoint names event %', p_through;
    END IF;
    PERFORM set_config('antevus.audit_purge', 'on', true);
    DELETE FROM audit_events WHERE chain_id = p_chain AND sequence <= p_through;
    GET DIAGNOSTICS removed = ROW_COUNT;
    PERFORM set_config('antevus.audit_purge', 'off', true);
    INSERT INTO audit_retention_horizons (chain_id, organization_id, sequence, hash)
    VALUES (p_chain, nullif(p_chain, '00000000-0000-0000-0000-000000000000'::uuid), p_through, last_hash)
    ON CONFLICT (chain_id) DO UPDATE
        SET sequence = EXCLUDED.sequence, hash = EXCLUDED.hash, purged_at = now();
    RETURN removed;
END $$;
REVOKE ALL ON FUNCTION audit_retention_purge(uuid, integer, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_retention_purge(uuid, integer, bigint) TO antevus_app;

-- Run data past its retention keeps its record (name, size, digest) but
-- not its bytes.
ALTER TABLE run_data DROP CONSTRAINT run_data_status_check;
ALTER TABLE run_data ADD CONSTRAINT run_data_status_check CHECK (status IN ('uploading', 'complete', 'purged'));
ALTER TABLE run_data ADD COLUMN purged_at timestamptz;
ALTER TABLE run_data DROP CONSTRAINT run_data_complete_has_digest;
ALTER TABLE run_data ADD CONSTRAINT run_data_complete_has_digest
    CHECK (status = 'uploading' OR (sha256 IS NOT NULL AND received_bytes = total_bytes));
CREATE INDEX run_data_completed_idx ON run_data (organization_id, completed_at) WHERE status = 'complete';
