-- Invitations: an admin invites an e-mail address with a role; the link
-- (single use, 7 days, stored hashed) lets the person sign up into the
-- organization.
CREATE TABLE invitations (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id   uuid NOT NULL REFERENCES organizations (id),
    email             text NOT NULL CHECK (email = lower(email) AND length(email) <= 254),
    role              text NOT NULL CHECK (role IN (
                          'SUPER_ADMIN', 'ADMIN', 'LAB_DIRECTOR', 'LAB_MANAGER', 'SENIOR_SCIENTIST',
                          'SCIENTIST', 'TECHNICIAN', 'QUALITY_ASSURANCE', 'COMPLIANCE_OFFICER',
                          'COLLABORATOR', 'VIEWER', 'GUEST')),
    token_hash        bytea NOT NULL UNIQUE,
    invited_by        uuid REFERENCES users (id),
    created_at        timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz NOT NULL,
    accepted_at       timestamptz,
    accepted_user_id  uuid REFERENCES users (id)
);
CREATE INDEX invitations_organization_idx ON invitations (organization_id, created_at DESC);

GRANT SELECT, INSERT, UPDATE, DELETE ON invitations TO antevus_app;
