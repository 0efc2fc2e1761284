-- Retention runs on a schedule, for every organization in turn: each tick
-- of the job claims the organizations whose last run is oldest (those
-- never run first, newest first), marking them as run so a concurrent
-- tick takes others; then sweeps what belongs to no organization.
ALTER TABLE organizations ADD COLUMN retention_ran_at timestamptz;
CREATE INDEX organizations_retention_idx ON organizations (retention_ran_at NULLS FIRST, created_at DESC);

-- Up to p_limit organizations not run within p_hours, claimed now.
CREATE FUNCTION claim_retention_due(p_limit integer, p_hours integer)
RETURNS TABLE (id uuid)
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE organizations o SET retention_ran_at = now()
    WHERE o.id IN (
        SELECT d.id FROM organizations d
        WHERE d.retention_ran_at IS NULL OR d.retention_ran_at < now() - make_interval(hours => p_hours)
        ORDER BY d.retention_ran_at NULLS FIRST, d.created_at DESC
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED)
    RETURNING o.id
$$;

-- Signup requests whose link expired; how many.
CREATE FUNCTION purge_expired_signup_requests()
RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH gone AS (DELETE FROM signup_requests WHERE expires_at <= now() RETURNING 1)
    SELECT count(*) FROM gone
$$;

-- Mail of no organization (signup confirmations) sent more than p_days
-- ago, or given up on (ten failed attempts) as long ago; how many.
CREATE FUNCTION purge_unowned_mail(p_days integer)
RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH gone AS (
        DELETE FROM email_outbox
        WHERE organization_id IS NULL
          AND (sent_at < now() - make_interval(days => p_days)
               OR (sent_at IS NULL AND attempts >= 10 AND created_at < now() - make_interval(days => p_days)))
        RETURNING 1)
    SELECT count(*) FROM gone
$$;

DO $$
DECLARE
    definer text;
BEGIN
    FOREACH definer IN ARRAY ARRAY[
        'claim_retention_due(integer, integer)', 'purge_expired_signup_requests()',
        'purge_unowned_mail(integer)'
    ] LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', definer);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO antevus_app', definer);
    END LOOP;
END $$;
