-- The retention job of one organization must neither delete nor count
-- another organization's rate-limit state: it deletes its own idle rows
-- under row-level security, and this function now sweeps only the rows of
-- no organization (those keyed by client address), which no tenant owns.
CREATE OR REPLACE FUNCTION purge_idle_rate_limits(p_hours integer)
RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH gone AS (
        DELETE FROM rate_limits
        WHERE organization_id IS NULL
          AND tat < now() - make_interval(hours => p_hours) AND coalesce(blocked_until < now(), true)
        RETURNING 1)
    SELECT count(*) FROM gone
$$;

-- An account's recovery and an invitation's acceptance are recorded in the
-- same statement as the change: the organization must be known before, to
-- build and sign its event, so these two read it (nothing is spent), and
-- the change then runs in the organization's scope with its event.

-- The owner of the live reset link with this hash (an active account).
CREATE FUNCTION reset_token_owner(p_token_hash text)
RETURNS TABLE (id uuid, organization_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT u.id, u.organization_id FROM password_resets r JOIN users u ON u.id = r.user_id
    WHERE r.token_hash = p_token_hash::bytea AND r.used_at IS NULL AND r.expires_at > now() AND u.is_active
$$;

-- The live invitation with this hash: its organization, e-mail and role.
CREATE FUNCTION invitation_for(p_token_hash text)
RETURNS TABLE (organization_id uuid, email text, role text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT i.organization_id, i.email, i.role FROM invitations i
    WHERE i.token_hash = p_token_hash::bytea AND i.accepted_at IS NULL AND i.expires_at > now()
$$;

REVOKE ALL ON FUNCTION reset_token_owner(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION reset_token_owner(text) TO antevus_app;
REVOKE ALL ON FUNCTION invitation_for(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION invitation_for(text) TO antevus_app;
