-- Events and webhooks (issue 20). An event is published in the statement
-- that writes the audit event it derives from (`shared::audit::events`),
-- and for every enabled webhook of the organization subscribed to its type
-- a delivery is queued in the same statement: the outbox. The delivery job
-- claims due deliveries of every organization (`claim_due_webhook_deliveries`)
-- and records each attempt in the delivery's organization.

CREATE TABLE events (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id  uuid NOT NULL REFERENCES organizations (id),
    event_type       text NOT NULL,
    version          integer NOT NULL CHECK (version >= 1),
    -- The audit event it derives from (the trail may outlive the event).
    audit_event_id   uuid NOT NULL,
    data             jsonb NOT NULL,
    occurred_at      timestamptz NOT NULL,
    UNIQUE (organization_id, id),
    UNIQUE (audit_event_id, event_type)
);
CREATE INDEX events_organization_idx ON events (organization_id, occurred_at DESC, id DESC);

-- The webhook endpoints of V1, with what the API shows and the delivery
-- job needs: a description, optimistic updates, the previous secret while
-- a rotation overlaps, and why and when it was disabled.
ALTER TABLE webhooks
    ADD COLUMN description text NOT NULL DEFAULT '' CHECK (length(description) <= 500),
    ADD COLUMN version integer NOT NULL DEFAULT 1,
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN previous_secret_ciphertext bytea,
    ADD COLUMN previous_secret_key_id text,
    ADD COLUMN previous_secret_expires_at timestamptz,
    -- The first failure since the last success: five days of failing
    -- disable the endpoint.
    ADD COLUMN failing_since timestamptz,
    ADD COLUMN disabled_reason text CHECK (disabled_reason IN ('gone', 'failing')),
    ADD COLUMN disabled_at timestamptz,
    ADD COLUMN last_delivered_at timestamptz;
CREATE INDEX webhooks_organization_idx ON webhooks (organization_id, created_at DESC);

-- A delivery is one event for one endpoint: its webhook-id (the event's
-- id) is the same on every attempt. `response` holds the attempts, newest
-- last: time, status, duration and a capped excerpt of the answer.
ALTER TABLE webhook_deliveries
    ADD COLUMN event_id uuid NOT NULL,
    ADD COLUMN status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled')),
    ADD COLUMN last_attempt_at timestamptz,
    ADD UNIQUE (organization_id, id),
    ADD FOREIGN KEY (organization_id, event_id) REFERENCES events (organization_id, id) ON DELETE CASCADE;
ALTER TABLE webhook_deliveries ALTER COLUMN response SET DEFAULT '[]';
DROP INDEX webhook_deliveries_due_idx;
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_webhook_idx ON webhook_deliveries (organization_id, webhook_id, created_at DESC, id DESC);

ALTER TABLE events ENABLE ROW LEVEL SECURITY;
CREATE POLICY organization_scope ON events
    USING (organization_id = app_organization())
    WITH CHECK (organization_id = app_organization());
GRANT SELECT, INSERT, DELETE ON events TO antevus_app;

-- Up to p_limit due deliveries of enabled endpoints, of every
-- organization, oldest due first, leased for p_lease_seconds (a run that
-- dies leaves them to a later one): with what signing and sending them
-- takes. Rows another run holds are skipped, not waited for.
CREATE FUNCTION claim_due_webhook_deliveries(p_limit integer, p_lease_seconds integer)
RETURNS TABLE (
    id uuid, organization_id uuid, webhook_id uuid, event_id uuid, event_type text,
    payload jsonb, attempts integer, created_at timestamptz, url text,
    secret_ciphertext bytea, secret_key_id text,
    previous_secret_ciphertext bytea, previous_secret_key_id text,
    previous_secret_expires_at timestamptz, failing_since timestamptz)
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH due AS (
        SELECT d.id FROM webhook_deliveries d
        JOIN webhooks w ON w.organization_id = d.organization_id AND w.id = d.webhook_id
        WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND w.is_active
        ORDER BY d.next_attempt_at
        LIMIT p_limit
        FOR UPDATE OF d SKIP LOCKED),
    claimed AS (
        UPDATE webhook_deliveries d SET next_attempt_at = now() + make_interval(secs => p_lease_seconds)
        FROM due WHERE d.id = due.id
        RETURNING d.id, d.organization_id, d.webhook_id, d.event_id, d.event_type, d.payload,
                  d.attempts, d.created_at)
    SELECT c.id, c.organization_id, c.webhook_id, c.event_id, c.event_type, c.payload, c.attempts,
           c.created_at, w.url, w.secret_ciphertext, w.secret_key_id,
           w.previous_secret_ciphertext, w.previous_secret_key_id, w.previous_secret_expires_at,
           w.failing_since
    FROM claimed c JOIN webhooks w ON w.organization_id = c.organization_id AND w.id = c.webhook_id
$$;

REVOKE ALL ON FUNCTION claim_due_webhook_deliveries(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION claim_due_webhook_deliveries(integer, integer) TO antevus_app;
