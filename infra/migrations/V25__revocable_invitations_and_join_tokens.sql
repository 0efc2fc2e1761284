-- An administrator can revoke an invitation or a bridge join token that
-- has not been used. Revoking also ends its life (expires_at = now), so
-- every lookup that checks `expires_at > now()` (invitation_for,
-- accept_invitation, bridge_join_token, the enrolment) refuses it as it is.
ALTER TABLE invitations
    ADD COLUMN revoked_at timestamptz,
    ADD COLUMN revoked_by uuid REFERENCES users (id);
ALTER TABLE bridge_join_tokens
    ADD COLUMN revoked_at timestamptz,
    ADD COLUMN revoked_by uuid REFERENCES users (id);
CREATE INDEX bridge_join_tokens_organization_idx ON bridge_join_tokens (organization_id, created_at DESC);
