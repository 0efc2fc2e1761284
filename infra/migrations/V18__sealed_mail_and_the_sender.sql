-- Mail at rest is sealed: a reset or invitation link in clear would let
-- whoever reads the database take over accounts. New messages keep their
-- body only in body_sealed (AES-256-GCM by the functions that declare
-- ENCRYPTION_KEYS, the message id as associated data); a sent message
-- keeps no body at all. Messages queued before this migration keep their
-- body_text until they are sent.
ALTER TABLE email_outbox
    ALTER COLUMN body_text DROP NOT NULL,
    ADD COLUMN body_sealed text,
    ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(),
    ADD CONSTRAINT email_outbox_one_body CHECK (body_text IS NULL OR body_sealed IS NULL);

UPDATE email_outbox SET body_text = NULL WHERE sent_at IS NOT NULL;

DROP INDEX IF EXISTS email_outbox_pending_idx;
CREATE INDEX email_outbox_due_idx ON email_outbox (next_attempt_at) WHERE sent_at IS NULL;

-- The mail sender (a scheduled job, of no organization) claims due
-- messages of every organization: each claimed one is leased for five
-- minutes (two senders never take the same message), then sent and
-- recorded in its organization's scope. Messages that failed ten times
-- are left for a person to look at.
CREATE FUNCTION claim_due_mail(p_limit integer)
RETURNS TABLE (id uuid, organization_id uuid)
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE email_outbox o SET next_attempt_at = now() + interval '5 minutes'
    WHERE o.id IN (
        SELECT d.id FROM email_outbox d
        WHERE d.sent_at IS NULL AND d.next_attempt_at <= now() AND d.attempts < 10
              AND d.organization_id IS NOT NULL
        ORDER BY d.next_attempt_at
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED)
    RETURNING o.id, o.organization_id
$$;

REVOKE ALL ON FUNCTION claim_due_mail(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION claim_due_mail(integer) TO antevus_app;
