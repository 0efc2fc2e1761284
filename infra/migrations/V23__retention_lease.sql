-- Scheduled retention claims an organization with a lease, not by marking
-- it run: a run that fails part way (the database went away, the worker
-- was stopped) is taken again once its lease is over, instead of waiting
-- a whole period; only a run that finished marks the organization run.
ALTER TABLE organizations ADD COLUMN retention_lease_until timestamptz;

DROP FUNCTION claim_retention_due(integer, integer);

-- Up to p_limit organizations not run within p_hours and not leased,
-- leased for p_lease_seconds (two ticks never take the same one); those
-- never tried before those whose lease lapsed (a run that keeps failing
-- does not crowd out the rest).
CREATE FUNCTION claim_retention_due(p_limit integer, p_hours integer, p_lease_seconds integer)
RETURNS TABLE (id uuid)
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE organizations o SET retention_lease_until = now() + make_interval(secs => p_lease_seconds)
    WHERE o.id IN (
        SELECT d.id FROM organizations d
        WHERE (d.retention_ran_at IS NULL OR d.retention_ran_at < now() - make_interval(hours => p_hours))
          AND (d.retention_lease_until IS NULL OR d.retention_lease_until < now())
        ORDER BY d.retention_ran_at NULLS FIRST, d.retention_lease_until NULLS FIRST, d.created_at DESC
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED)
    RETURNING o.id
$$;

-- The run of p_id finished (removed what was due, or refused because its
-- chain does not verify): run now, lease released. False when p_id was
-- not leased.
CREATE FUNCTION finish_retention(p_id uuid)
RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH done AS (
        UPDATE organizations SET retention_ran_at = now(), retention_lease_until = NULL
        WHERE id = p_id AND retention_lease_until IS NOT NULL
        RETURNING 1)
    SELECT EXISTS (SELECT 1 FROM done)
$$;

DO $$
DECLARE
    definer text;
BEGIN
    FOREACH definer IN ARRAY ARRAY[
        'claim_retention_due(integer, integer, integer)', 'finish_retention(uuid)'
    ] LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', definer);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO antevus_app', definer);
    END LOOP;
END $$;
