-- Row-level security, part 2: the tables that are also read before the
-- organization is known. Each such read goes through one narrow
-- SECURITY DEFINER function below, which finds exactly one thing by the
-- credential the caller holds (an e-mail, a key's prefix, a token's hash)
-- and returns only what the next step needs. Everything else on these
-- tables goes through an organization scope, as in part 1.
--
-- The functions run as their owner (the role that runs migrations, which
-- owns the tables and so is not subject to their policies); only the
-- application role may call them.

DO $$
DECLARE
    tenant text;
BEGIN
    FOREACH tenant IN ARRAY ARRAY[
        'users', 'api_keys', 'sessions', 'password_resets', 'invitations',
        'bridge_join_tokens', 'email_outbox'
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

-- Rate-limit state keyed by a client address belongs to no organization:
-- such rows are reached without a setting, an organization's only with it.
ALTER TABLE rate_limits ENABLE ROW LEVEL SECURITY;
CREATE POLICY organization_scope ON rate_limits
    USING (organization_id IS NOT DISTINCT FROM app_organization())
    WITH CHECK (organization_id IS NOT DISTINCT FROM app_organization());

-- The audit trail: an organization reads its own chain only. A refusal
-- before anyone is authenticated goes on the system chain (no
-- organization), which can be written without a setting and read by no
-- application request. Events are never updated or deleted (no policy,
-- no privilege, and the V8 triggers); retention purges through its own
-- SECURITY DEFINER function (V11).
ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY organization_reads ON audit_events FOR SELECT
    USING (organization_id = app_organization());
CREATE POLICY organization_writes ON audit_events FOR INSERT
    WITH CHECK (organization_id IS NOT DISTINCT FROM app_organization());

-- A login: the account with this e-mail (unique across organizations).
CREATE FUNCTION account_for_login(p_email text)
RETURNS TABLE (id uuid, organization_id uuid, email text, name text, role text,
               password_hash text, is_active boolean, locked boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT u.id, u.organization_id, u.email, u.name, u.role, u.password_hash, u.is_active,
           coalesce(u.account_locked_until > now(), false)
    FROM users u WHERE u.email = p_email
$$;

-- A password reset request: the active account with this e-mail.
CREATE FUNCTION account_for_reset(p_email text)
RETURNS TABLE (id uuid, organization_id uuid, name text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT u.id, u.organization_id, u.name FROM users u WHERE u.email = p_email AND u.is_active
$$;

-- An API key by its prefix (public, unique), with its owner; the caller
-- compares the secret's hash itself, in constant time.
CREATE FUNCTION api_key_by_prefix(p_prefix text)
RETURNS TABLE (id uuid, key_hash text, permissions jsonb, ip_allowlist text[], rate_limit integer,
               usable boolean, user_id uuid, organization_id uuid, role text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT k.id, encode(k.key_hash, 'hex'), k.permissions, k.ip_allowlist::text[], k.rate_limit,
           (k.is_active AND u.is_active AND (k.expires_at IS NULL OR k.expires_at > now())),
           u.id, u.organization_id, u.role
    FROM api_keys k JOIN users u ON u.id = k.user_id AND u.organization_id = k.organization_id
    WHERE k.key_prefix = p_prefix
$$;

-- Spends the live refresh token with this hash and issues its successor
-- in the same family, if the user is still active.
CREATE FUNCTION rotate_refresh_token(p_presented text, p_successor uuid, p_next_hash text,
                                     p_ip text, p_user_agent text)
RETURNS TABLE (family_id uuid, user_id uuid, organization_id uuid, email text, name text,
               role text, expires_in float8)
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH spent AS (
        UPDATE sessions SET revoked_at = now(), revoked_reason = 'rotated', replaced_by = p_successor,
                            last_used_at = now()
        WHERE token_hash = p_presented::bytea AND revoked_at IS NULL AND expires_at > now()
        RETURNING organization_id, user_id, family_id, expires_at),
    fresh AS (
        INSERT INTO sessions (id, organization_id, user_id, token_hash, family_id, ip_address, user_agent,
                              expires_at)
        SELECT p_successor, s.organization_id, s.user_id, p_next_hash::bytea, s.family_id, p_ip::inet,
               p_user_agent, s.expires_at
        FROM spent s JOIN users u ON u.id = s.user_id WHERE u.is_active
        RETURNING family_id, user_id, organization_id, expires_at)
    SELECT f.family_id, f.user_id, f.organization_id, u.email, u.name, u.role,
           extract(epoch FROM f.expires_at - now())::float8
    FROM fresh f JOIN users u ON u.id = f.user_id
$$;

-- A refresh token that could not be rotated: its family, and whether it
-- had been spent before (reuse, which ends the family).
CREATE FUNCTION refresh_token_state(p_presented text)
RETURNS TABLE (family_id uuid, user_id uuid, organization_id uuid, reused boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT s.family_id, s.user_id, s.organization_id, (s.revoked_reason = 'rotated')
    FROM sessions s WHERE s.token_hash = p_presented::bytea
$$;

-- Spends the live reset link with this hash: sets the active account's
-- password (clearing its lock) and ends all its logins.
CREATE FUNCTION use_reset_token(p_token_hash text, p_password_hash text)
RETURNS TABLE (id uuid, organization_id uuid)
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH spent AS (
        UPDATE password_resets SET used_at = now()
        WHERE token_hash = p_token_hash::bytea AND used_at IS NULL AND expires_at > now()
        RETURNING user_id),
    changed AS (
        UPDATE users u SET password_hash = p_password_hash, failed_login_attempts = 0,
                           account_locked_until = NULL, updated_at = now()
        FROM spent WHERE u.id = spent.user_id AND u.is_active
        RETURNING u.id, u.organization_id),
    ended AS (
        UPDATE sessions s SET revoked_at = now(), revoked_reason = 'password_reset'
        FROM changed WHERE s.user_id = changed.id AND s.revoked_at IS NULL RETURNING s.id)
    SELECT changed.id, changed.organization_id FROM changed
$$;

-- Spends the live invitation with this hash and creates its account in
-- the inviting organization, with the invited e-mail and role.
CREATE FUNCTION accept_invitation(p_token_hash text, p_user_id uuid, p_password_hash text, p_name text)
RETURNS TABLE (user_id uuid, organization_id uuid, email text, role text)
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH accepted AS (
        UPDATE invitations SET accepted_at = now(), accepted_user_id = p_user_id
        WHERE token_hash = p_token_hash::bytea AND accepted_at IS NULL AND expires_at > now()
        RETURNING organization_id, email, role)
    INSERT INTO users (id, organization_id, email, password_hash, name, role)
    SELECT p_user_id, a.organization_id, a.email, p_password_hash, p_name, a.role FROM accepted a
    RETURNING id, organization_id, email, role
$$;

-- A bridge's unused, unexpired join token with this hash (its only
-- credential before it is enrolled).
CREATE FUNCTION bridge_join_token(p_token_hash text)
RETURNS TABLE (id uuid, organization_id uuid, created_by uuid, name text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT t.id, t.organization_id, t.created_by, t.name FROM bridge_join_tokens t
    WHERE t.token_hash = p_token_hash::bytea AND t.used_at IS NULL AND t.expires_at > now()
$$;

-- Rate-limit state idle for this many hours and not blocking, of every
-- organization and of none (the retention job's sweep); how many rows.
CREATE FUNCTION purge_idle_rate_limits(p_hours integer)
RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH gone AS (
        DELETE FROM rate_limits
        WHERE tat < now() - make_interval(hours => p_hours) AND coalesce(blocked_until < now(), true)
        RETURNING 1)
    SELECT count(*) FROM gone
$$;

DO $$
DECLARE
    definer text;
BEGIN
    FOREACH definer IN ARRAY ARRAY[
        'account_for_login(text)', 'account_for_reset(text)', 'api_key_by_prefix(text)',
        'rotate_refresh_token(text, uuid, text, text, text)', 'refresh_token_state(text)',
        'use_reset_token(text, text)', 'accept_invitation(text, uuid, text, text)',
        'bridge_join_token(text)', 'purge_idle_rate_limits(integer)'
    ] LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', definer);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO antevus_app', definer);
    END LOOP;
END $$;
