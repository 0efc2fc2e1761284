-- Edge bridges: the agents labs install, enrolled with a single-use join
-- token and authenticated afterwards with an API key of their own.
CREATE TABLE bridges (
    id                     uuid PRIMARY KEY,
    organization_id        uuid NOT NULL REFERENCES organizations (id),
    name                   text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    api_key_id             uuid NOT NULL UNIQUE REFERENCES api_keys (id),
    version                text CHECK (length(version) <= 64),
    hostname               text CHECK (length(hostname) <= 255),
    last_heartbeat_at      timestamptz,
    queue_depth            bigint CHECK (queue_depth >= 0),
    connected_instruments  jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(connected_instruments) = 'array'),
    enrolled_by            uuid REFERENCES users (id),
    created_at             timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, id)
);
CREATE INDEX bridges_org_idx ON bridges (organization_id, created_at DESC);

CREATE TABLE bridge_join_tokens (
    id               uuid PRIMARY KEY,
    organization_id  uuid NOT NULL REFERENCES organizations (id),
    token_hash       bytea NOT NULL UNIQUE,
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    created_by       uuid NOT NULL REFERENCES users (id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    used_at          timestamptz,
    bridge_id        uuid REFERENCES bridges (id)
);

GRANT SELECT, INSERT, UPDATE ON bridges, bridge_join_tokens TO antevus_app;
