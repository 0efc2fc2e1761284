-- Antevus initial schema: the whole data model of the design document.
-- Every tenant-owned row carries organization_id; child rows reference their
-- parent through (organization_id, id) so a row can never point into another
-- organization. Enumerations are text with CHECK constraints (the API owns
-- the vocabulary; adding a value is a new migration).

CREATE TABLE organizations (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id        uuid NOT NULL REFERENCES organizations (id),
    email                  text NOT NULL UNIQUE CHECK (email = lower(email) AND length(email) <= 254),
    password_hash          text NOT NULL,
    name                   text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    role                   text NOT NULL CHECK (role IN (
                               'SUPER_ADMIN', 'ADMIN', 'LAB_DIRECTOR', 'LAB_MANAGER', 'SENIOR_SCIENTIST',
                               'SCIENTIST', 'TECHNICIAN', 'QUALITY_ASSURANCE', 'COMPLIANCE_OFFICER',
                               'COLLABORATOR', 'VIEWER', 'GUEST')),
    department             text,
    is_active              boolean NOT NULL DEFAULT true,
    failed_login_attempts  integer NOT NULL DEFAULT 0,
    account_locked_until   timestamptz,
    last_login_at          timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, id)
);
CREATE INDEX users_organization_idx ON users (organization_id, role);

CREATE TABLE sessions (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id  uuid NOT NULL,
    user_id          uuid NOT NULL,
    token_hash       bytea NOT NULL UNIQUE,
    family_id        uuid NOT NULL,
    ip_address       inet,
    user_agent       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    revoked_at       timestamptz,
    FOREIGN KEY (organization_id, user_id) REFERENCES users (organization_id, id) ON DELETE CASCADE
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_family_idx ON sessions (family_id);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

CREATE TABLE api_keys (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id  uuid NOT NULL,
    user_id          uuid NOT NULL,
    key_prefix       text NOT NULL UNIQUE,
    key_hash         bytea NOT NULL UNIQUE,
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    permissions      jsonb NOT NULL DEFAULT '[]',
    ip_allowlist     cidr[] NOT NULL DEFAULT '{}',
    rate_limit       integer CHECK (rate_limit > 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz,
    last_used_at     timestamptz,
    usage_count      bigint NOT NULL DEFAULT 0,
    is_active        boolean NOT NULL DEFAULT true,
    FOREIGN KEY (organization_id, user_id) REFERENCES users (organization_id, id)
);
CREATE INDEX api_keys_organization_idx ON api_keys (organization_id);

-- Rate-limit state is keyed by class and subject (user, key or client
-- address); organization_id is set when the subject belongs to one.
CREATE TABLE rate_limits (
    key              text PRIMARY KEY,
    organization_id  uuid REFERENCES organizations (id),
    count            integer NOT NULL DEFAULT 0,
    window_start     timestamptz NOT NULL DEFAULT now(),
    is_blocked       boolean NOT NULL DEFAULT false,
    blocked_until    timestamptz
);

CREATE TABLE instruments (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id  uuid NOT NULL REFERENCES organizations (id),
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    type             text NOT NULL CHECK (type IN (
                         'dna_sequencer', 'liquid_handler', 'hplc', 'qpcr', 'plate_reader', 'centrifuge',
                         'incubator', 'freezer', 'spectrophotometer', 'microscope', 'mass_spectrometer',
                         'flow_cytometer')),
    status           text NOT NULL DEFAULT 'offline' CHECK (status IN (
                         'online', 'offline', 'idle', 'running', 'error', 'maintenance')),
    location         text CHECK (length(location) <= 255),
    model            text CHECK (length(model) <= 255),
    serial_number    text CHECK (length(serial_number) <= 255),
    firmware         text CHECK (length(firmware) <= 255),
    configuration    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(configuration) = 'object'),
    calibration      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(calibration) = 'object'),
    version          bigint NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    last_seen_at     timestamptz,
    created_by       uuid REFERENCES users (id),
    deleted_at       timestamptz,
    UNIQUE (organization_id, id),
    UNIQUE (organization_id, serial_number)
);
-- The list endpoint's keyset order, and its filters.
CREATE INDEX instruments_list_idx ON instruments (organization_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX instruments_status_idx ON instruments (organization_id, status, created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX instruments_type_idx ON instruments (organization_id, type, created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX instruments_location_idx ON instruments (organization_id, location, created_at DESC, id DESC) WHERE deleted_at IS NULL;

CREATE TABLE runs (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id  uuid NOT NULL,
    instrument_id    uuid NOT NULL,
    status           text NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed', 'aborted')),
    started_at       timestamptz,
    completed_at     timestamptz,
    data_url         text,
    metadata         jsonb NOT NULL DEFAULT '{}',
    results          jsonb,
    qc_metrics       jsonb,
    created_by       uuid REFERENCES users (id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, id),
    FOREIGN KEY (organization_id, instrument_id) REFERENCES instruments (organization_id, id)
);
CREATE INDEX runs_instrument_idx ON runs (organization_id, instrument_id, created_at DESC);
CREATE INDEX runs_status_idx ON runs (organization_id, status, created_at DESC);
CREATE INDEX runs_started_idx ON runs (organization_id, started_at DESC);

CREATE TABLE maintenance (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id  uuid NOT NULL,
    instrument_id    uuid NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('calibration', 'preventive', 'repair', 'inspection')),
    status           text NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'completed', 'overdue', 'cancelled')),
    scheduled_for    timestamptz NOT NULL,
    completed_at     timestamptz,
    notes            text,
    created_by       uuid REFERENCES users (id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (organization_id, instrument_id) REFERENCES instruments (organization_id, id)
);
CREATE INDEX maintenance_instrument_idx ON maintenance (organization_id, instrument_id, scheduled_for);

CREATE TABLE chat_threads (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id  uuid NOT NULL,
    user_id          uuid NOT NULL,
    title            text NOT NULL CHECK (length(title) BETWEEN 1 AND 255),
    is_archived      boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    last_message_at  timestamptz,
    UNIQUE (organization_id, id),
    FOREIGN KEY (organization_id, user_id) REFERENCES users (organization_id, id)
);
CREATE INDEX chat_threads_user_idx ON chat_threads (organization_id, user_id, updated_at DESC);

CREATE TABLE messages (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id    uuid NOT NULL,
    thread_id          uuid NOT NULL,
    role               text NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    content            text,
    encrypted_content  bytea,
    key_id             text,
    sensitivity        text NOT NULL DEFAULT 'internal' CHECK (sensitivity IN ('public', 'internal', 'confidential', 'restricted')),
    metadata           jsonb NOT NULL DEFAULT '{}',
    created_at         timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (organization_id, thread_id) REFERENCES chat_threads (organization_id, id) ON DELETE CASCADE
);
CREATE INDEX messages_thread_idx ON messages (organization_id, thread_id, created_at);

-- organization_id and user_id are nullable: a failed login for an unknown
-- e-mail belongs to no organization.
CREATE TABLE audit_events (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id  uuid REFERENCES organizations (id),
    user_id          uuid REFERENCES users (id),
    event_type       text NOT NULL,
    severity         text NOT NULL CHECK (severity IN ('INFO', 'WARNING', 'ERROR', 'CRITICAL')),
    action           text NOT NULL,
    outcome          text NOT NULL CHECK (outcome IN ('SUCCESS', 'FAILURE', 'DENIED')),
    record_type      text,
    record_id        uuid,
    old_values       jsonb,
    new_values       jsonb,
    reason           text,
    metadata         jsonb NOT NULL DEFAULT '{}',
    ip_address       inet,
    user_agent       text,
    request_id       text,
    session_id       text,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_events_org_created_idx ON audit_events (organization_id, created_at DESC);
CREATE INDEX audit_events_user_idx ON audit_events (user_id, created_at DESC);
CREATE INDEX audit_events_type_idx ON audit_events (organization_id, event_type, created_at DESC);
CREATE INDEX audit_events_record_idx ON audit_events (record_type, record_id);

CREATE TABLE webhooks (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id    uuid NOT NULL,
    user_id            uuid NOT NULL,
    url                text NOT NULL CHECK (length(url) <= 2048),
    secret_ciphertext  bytea NOT NULL,
    secret_key_id      text NOT NULL,
    events             jsonb NOT NULL DEFAULT '[]',
    is_active          boolean NOT NULL DEFAULT true,
    created_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, id),
    FOREIGN KEY (organization_id, user_id) REFERENCES users (organization_id, id)
);

CREATE TABLE webhook_deliveries (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id  uuid NOT NULL,
    webhook_id       uuid NOT NULL,
    event_type       text NOT NULL,
    payload          jsonb NOT NULL,
    status_code      integer,
    response         jsonb,
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,
    delivered_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (organization_id, webhook_id) REFERENCES webhooks (organization_id, id) ON DELETE CASCADE
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE delivered_at IS NULL;

-- The application role: data manipulation only, and the audit trail is
-- append-only for it (no UPDATE, no DELETE).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'antevus_app') THEN
        CREATE ROLE antevus_app NOLOGIN;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO antevus_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON
    organizations, users, sessions, api_keys, rate_limits, instruments, runs, maintenance,
    chat_threads, messages, webhooks, webhook_deliveries
    TO antevus_app;
GRANT SELECT, INSERT ON audit_events TO antevus_app;
