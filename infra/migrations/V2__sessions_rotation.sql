-- Sessions: one family per login. Every refresh rotates the refresh token
-- into a new row of the same family; the old row records what replaced it,
-- so presenting a spent token is recognised as reuse and ends the family.
ALTER TABLE sessions
    ADD COLUMN replaced_by     uuid,
    ADD COLUMN revoked_reason  text CHECK (revoked_reason IN ('rotated', 'logout', 'reuse', 'deactivated', 'password_reset', 'admin')),
    ADD COLUMN last_used_at    timestamptz;

-- Access checks look for a live row of the caller's family.
CREATE INDEX sessions_family_live_idx ON sessions (family_id) WHERE revoked_at IS NULL;
