-- Password reset: single-use tokens, stored hashed, 30-minute expiry.
CREATE TABLE password_resets (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id  uuid NOT NULL,
    user_id          uuid NOT NULL,
    token_hash       bytea NOT NULL UNIQUE,
    ip_address       inet,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    used_at          timestamptz,
    FOREIGN KEY (organization_id, user_id) REFERENCES users (organization_id, id) ON DELETE CASCADE
);
CREATE INDEX password_resets_user_idx ON password_resets (user_id);

-- Outgoing e-mail. The embedded default: rows wait here (tests read them);
-- a sender delivers them through an HTTP mail provider when one is set up.
CREATE TABLE email_outbox (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id  uuid REFERENCES organizations (id),
    to_address       text NOT NULL,
    template         text NOT NULL,
    subject          text NOT NULL,
    body_text        text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    attempts         integer NOT NULL DEFAULT 0,
    last_error       text
);
CREATE INDEX email_outbox_pending_idx ON email_outbox (created_at) WHERE sent_at IS NULL;

GRANT SELECT, INSERT, UPDATE, DELETE ON password_resets, email_outbox TO antevus_app;
