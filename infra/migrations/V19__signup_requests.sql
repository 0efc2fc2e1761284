-- Signing up no longer tells anyone whether an address has an account,
-- and nobody can hold someone else's address: a signup is a request,
-- kept here until the address's owner follows the link mailed to it.
-- Only then are the organization and its first admin created. An address
-- that already has an account gets a note instead of a link; the answer
-- to the request is the same either way.
--
-- No application request reads or writes this table directly (row-level
-- security with no policy): the three functions below do, by the token's
-- hash or for the request being made.
CREATE TABLE signup_requests (
    id                 uuid PRIMARY KEY,
    email              text NOT NULL CHECK (email = lower(email) AND length(email) <= 254),
    organization_name  text NOT NULL CHECK (length(organization_name) BETWEEN 1 AND 255),
    name               text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    password_hash      text NOT NULL,
    token_hash         bytea NOT NULL UNIQUE,
    created_at         timestamptz NOT NULL DEFAULT now(),
    expires_at         timestamptz NOT NULL
);
CREATE INDEX signup_requests_email_idx ON signup_requests (email);
CREATE INDEX signup_requests_expiry_idx ON signup_requests (expires_at);
ALTER TABLE signup_requests ENABLE ROW LEVEL SECURITY;

-- Records a signup request and queues its confirmation (of no
-- organization yet; the body sealed by the caller); the address's expired
-- requests go.
CREATE FUNCTION request_signup(p_id uuid, p_email text, p_organization_name text, p_name text,
                               p_password_hash text, p_token_hash text, p_ttl_hours integer,
                               p_mail_id uuid, p_subject text, p_body_sealed text)
RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    DELETE FROM signup_requests WHERE email = p_email AND expires_at <= now();
    INSERT INTO signup_requests (id, email, organization_name, name, password_hash, token_hash, expires_at)
    VALUES (p_id, p_email, p_organization_name, p_name, p_password_hash, p_token_hash::bytea,
            now() + make_interval(hours => p_ttl_hours));
    INSERT INTO email_outbox (id, organization_id, to_address, template, subject, body_sealed)
    VALUES (p_mail_id, NULL, p_email, 'signup_confirmation', p_subject, p_body_sealed);
$$;

-- The live request with this hash (nothing is spent): what the
-- confirmation's audit event records, and the password's hash, which the
-- person confirming must match (a link followed by someone who did not
-- ask creates nothing: they do not know the password).
CREATE FUNCTION signup_request_for(p_token_hash text)
RETURNS TABLE (email text, organization_name text, name text, password_hash text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT r.email, r.organization_name, r.name, r.password_hash FROM signup_requests r
    WHERE r.token_hash = p_token_hash::bytea AND r.expires_at > now()
$$;

-- Spends the live request with this hash: creates organization
-- p_organization_id and its first admin p_user_id, and drops the
-- address's other requests, in one statement (run in the new
-- organization's scope with its event). Nothing when the request was
-- spent meanwhile; users_email_key when the address took an account
-- meanwhile (an invitation accepted).
CREATE FUNCTION confirm_signup(p_token_hash text, p_organization_id uuid, p_slug text, p_user_id uuid)
RETURNS TABLE (user_id uuid, organization_id uuid, email text, role text)
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH spent AS (
        DELETE FROM signup_requests r
        WHERE r.token_hash = p_token_hash::bytea AND r.expires_at > now()
        RETURNING r.email, r.organization_name, r.name, r.password_hash),
    organization AS (
        INSERT INTO organizations (id, name, slug)
        SELECT p_organization_id, s.organization_name, p_slug FROM spent s
        RETURNING id),
    others AS (
        DELETE FROM signup_requests r USING spent s
        WHERE r.email = s.email AND r.token_hash <> p_token_hash::bytea)
    INSERT INTO users (id, organization_id, email, password_hash, name, role)
    SELECT p_user_id, o.id, s.email, s.password_hash, s.name, 'ADMIN' FROM spent s, organization o
    RETURNING id, organization_id, email, role
$$;

-- The mail sender claims due messages with what it needs to send them
-- (one query, not one per message), including those of no organization
-- (a signup's confirmation), and records each outcome here.
DROP FUNCTION claim_due_mail(integer);
CREATE FUNCTION claim_due_mail(p_limit integer)
RETURNS TABLE (id uuid, organization_id uuid, to_address text, subject text,
               body_sealed text, body_text text, attempts integer)
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE email_outbox o SET next_attempt_at = now() + interval '5 minutes'
    WHERE o.id IN (
        SELECT d.id FROM email_outbox d
        WHERE d.sent_at IS NULL AND d.next_attempt_at <= now() AND d.attempts < 10
        ORDER BY d.next_attempt_at
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED)
    RETURNING o.id, o.organization_id, o.to_address, o.subject, o.body_sealed, o.body_text, o.attempts
$$;

-- A delivery of message p_id: sent (p_error NULL: its body kept no
-- longer) or failed (counted, the error kept, retried after
-- p_retry_secs).
CREATE FUNCTION record_mail_delivery(p_id uuid, p_error text, p_retry_secs double precision)
RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE email_outbox SET
        attempts = attempts + 1,
        sent_at = CASE WHEN p_error IS NULL THEN now() END,
        last_error = left(p_error, 500),
        body_sealed = CASE WHEN p_error IS NULL THEN NULL ELSE body_sealed END,
        body_text = CASE WHEN p_error IS NULL THEN NULL ELSE body_text END,
        next_attempt_at = CASE WHEN p_error IS NULL THEN next_attempt_at
                               ELSE now() + make_interval(secs => p_retry_secs) END
    WHERE id = p_id AND sent_at IS NULL
$$;

DO $$
DECLARE
    definer text;
BEGIN
    FOREACH definer IN ARRAY ARRAY[
        'request_signup(uuid, text, text, text, text, text, integer, uuid, text, text)',
        'signup_request_for(text)', 'confirm_signup(text, uuid, text, uuid)',
        'claim_due_mail(integer)', 'record_mail_delivery(uuid, text, double precision)'
    ] LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', definer);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO antevus_app', definer);
    END LOOP;
END $$;
