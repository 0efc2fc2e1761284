-- The second factor (TOTP, RFC 6238): one per user, its key sealed with
-- AES-256-GCM by the functions that declare ENCRYPTION_KEYS (the database
-- holds ciphertext only), confirmed with a first code before it counts,
-- and the last time step used so a code is never accepted twice.
CREATE TABLE user_second_factors (
    user_id          uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    organization_id  uuid NOT NULL REFERENCES organizations (id),
    secret_sealed    text NOT NULL CHECK (length(secret_sealed) BETWEEN 20 AND 400),
    confirmed_at     timestamptz,
    last_used_step   bigint NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- Single-use recovery codes, as their SHA-256.
CREATE TABLE mfa_recovery_codes (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id          uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    organization_id  uuid NOT NULL REFERENCES organizations (id),
    code_hash        text NOT NULL,
    used_at          timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, code_hash)
);

-- The roles whose members must have a second factor to sign in.
ALTER TABLE organizations ADD COLUMN mfa_required_roles text[] NOT NULL DEFAULT '{}';

DO $$
DECLARE
    tenant text;
BEGIN
    FOREACH tenant IN ARRAY ARRAY['user_second_factors', 'mfa_recovery_codes'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', tenant);
        EXECUTE format(
            'CREATE POLICY organization_scope ON %I '
            'USING (organization_id = app_organization()) '
            'WITH CHECK (organization_id = app_organization())',
            tenant
        );
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO antevus_app', tenant);
    END LOOP;
END $$;
