-- A user ends one of their own logins (`DELETE /api/auth/sessions/:id`),
-- and changing one's password ends one's other logins: two more reasons a
-- login ends.
ALTER TABLE sessions DROP CONSTRAINT sessions_revoked_reason_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_revoked_reason_check
    CHECK (revoked_reason IN ('rotated', 'logout', 'reuse', 'deactivated', 'password_reset', 'admin',
                              'revoked', 'password_changed'));
