-- A claimed delivery carries a lease: a token of its own and how long it
-- holds (issue 20). Only the holder of the current token records an
-- attempt, so a person's resend and the delivery job never both send one
-- delivery at once, and an attempt that ends after its lease was taken
-- over (a late failure after a success) changes nothing. The due time
-- stays the due time: a run that dies leaves its deliveries due, to be
-- claimed again once the lease has run out.
ALTER TABLE webhook_deliveries
    ADD COLUMN lease uuid,
    ADD COLUMN leased_until timestamptz;

DROP FUNCTION claim_due_webhook_deliveries(integer, integer);

-- Up to p_limit due deliveries of enabled endpoints, of every
-- organization, oldest due first, that no lease holds: each leased for
-- p_lease_seconds under a new token, with what signing and sending it
-- takes. Rows another run holds are skipped, not waited for.
CREATE FUNCTION claim_due_webhook_deliveries(p_limit integer, p_lease_seconds integer)
RETURNS TABLE (
    id uuid, organization_id uuid, webhook_id uuid, event_id uuid, event_type text,
    payload jsonb, attempts integer, lease uuid, created_at timestamptz, url text,
    secret_ciphertext bytea, secret_key_id text,
    previous_secret_ciphertext bytea, previous_secret_key_id text,
    previous_secret_expires_at timestamptz, failing_since timestamptz)
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH due AS (
        SELECT d.id FROM webhook_deliveries d
        JOIN webhooks w ON w.organization_id = d.organization_id AND w.id = d.webhook_id
        WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND w.is_active
          AND (d.leased_until IS NULL OR d.leased_until <= now())
        ORDER BY d.next_attempt_at
        LIMIT p_limit
        FOR UPDATE OF d SKIP LOCKED),
    claimed AS (
        UPDATE webhook_deliveries d
           SET lease = gen_random_uuid(), leased_until = now() + make_interval(secs => p_lease_seconds)
        FROM due WHERE d.id = due.id
        RETURNING d.id, d.organization_id, d.webhook_id, d.event_id, d.event_type, d.payload,
                  d.attempts, d.lease, d.created_at)
    SELECT c.id, c.organization_id, c.webhook_id, c.event_id, c.event_type, c.payload, c.attempts,
           c.lease, c.created_at, w.url, w.secret_ciphertext, w.secret_key_id,
           w.previous_secret_ciphertext, w.previous_secret_key_id, w.previous_secret_expires_at,
           w.failing_since
    FROM claimed c JOIN webhooks w ON w.organization_id = c.organization_id AND w.id = c.webhook_id
$$;

REVOKE ALL ON FUNCTION claim_due_webhook_deliveries(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION claim_due_webhook_deliveries(integer, integer) TO antevus_app;
