-- Instruments, control commands, runs, run data and maintenance (issue 4).

-- When the instrument's calibration falls due; set by completing a
-- calibration (maintenance) or by PUT.
ALTER TABLE instruments ADD COLUMN calibration_due_at timestamptz;

-- Control commands, delivered to the lab through the edge bridge.
-- Lifecycle: queued -> sent -> acknowledged -> completed | failed, and
-- queued/sent -> expired once expires_at passes without a bridge taking it.
CREATE TABLE instrument_commands (
    id               uuid PRIMARY KEY,
    organization_id  uuid NOT NULL,
    instrument_id    uuid NOT NULL,
    run_id           uuid,
    command          text NOT NULL CHECK (command ~ '^[a-z][a-z_]{1,39}$'),
    parameters       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(parameters) = 'object'),
    status           text NOT NULL DEFAULT 'queued' CHECK (status IN (
                         'queued', 'sent', 'acknowledged', 'completed', 'failed', 'expired')),
    idempotency_key  text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    request_hash     bytea NOT NULL,
    result           jsonb,
    error            text,
    created_by       uuid REFERENCES users (id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    acknowledged_at  timestamptz,
    completed_at     timestamptz,
    expires_at       timestamptz NOT NULL,
    UNIQUE (organization_id, idempotency_key),
    UNIQUE (organization_id, id),
    FOREIGN KEY (organization_id, instrument_id) REFERENCES instruments (organization_id, id)
);
CREATE INDEX instrument_commands_list_idx
    ON instrument_commands (organization_id, instrument_id, created_at DESC, id DESC);
CREATE INDEX instrument_commands_pending_idx
    ON instrument_commands (organization_id, instrument_id, created_at) WHERE status IN ('queued', 'sent');

-- Runs: a name, the operator, optimistic-concurrency version, why it ended.
ALTER TABLE runs ADD COLUMN name text CHECK (length(name) BETWEEN 1 AND 255);
ALTER TABLE runs ADD COLUMN operator_id uuid REFERENCES users (id);
ALTER TABLE runs ADD COLUMN version bigint NOT NULL DEFAULT 1;
ALTER TABLE runs ADD COLUMN end_reason text CHECK (length(end_reason) <= 1000);
ALTER TABLE runs ADD CONSTRAINT runs_metadata_object CHECK (jsonb_typeof(metadata) = 'object');

-- The list endpoint's keyset order and its filters (newest first).
DROP INDEX runs_instrument_idx;
DROP INDEX runs_status_idx;
DROP INDEX runs_started_idx;
CREATE INDEX runs_list_idx ON runs (organization_id, created_at DESC, id DESC);
CREATE INDEX runs_instrument_idx ON runs (organization_id, instrument_id, created_at DESC, id DESC);
CREATE INDEX runs_status_idx ON runs (organization_id, status, created_at DESC, id DESC);
CREATE INDEX runs_operator_idx ON runs (organization_id, operator_id, created_at DESC, id DESC);
CREATE INDEX runs_started_idx ON runs (organization_id, started_at DESC, id DESC);
-- At most one active run per instrument.
CREATE UNIQUE INDEX runs_one_active_idx ON runs (organization_id, instrument_id)
    WHERE status IN ('pending', 'running');

-- A run's raw data file: one per run, immutable once complete. Stored in
-- PostgreSQL chunks (backend 'postgres') or an S3-compatible bucket
-- (backend 's3', multipart upload while 'uploading').
CREATE TABLE run_data (
    run_id           uuid PRIMARY KEY,
    organization_id  uuid NOT NULL,
    filename         text NOT NULL CHECK (length(filename) BETWEEN 1 AND 255),
    content_type     text NOT NULL CHECK (length(content_type) <= 255),
    format           text CHECK (format IN ('plate_reader_csv', 'qpcr_ct_csv')),
    backend          text NOT NULL CHECK (backend IN ('postgres', 's3')),
    object_key       text,
    upload_id        text,
    status           text NOT NULL DEFAULT 'uploading' CHECK (status IN ('uploading', 'complete')),
    total_bytes      bigint NOT NULL CHECK (total_bytes >= 0),
    received_bytes   bigint NOT NULL DEFAULT 0 CHECK (received_bytes BETWEEN 0 AND total_bytes),
    expected_sha256  bytea,
    sha256           bytea,
    created_by       uuid REFERENCES users (id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz,
    UNIQUE (organization_id, run_id),
    FOREIGN KEY (organization_id, run_id) REFERENCES runs (organization_id, id)
);

-- The pieces of a run's data in order of offset: the bytes themselves
-- (postgres backend) or an S3 part's number and ETag (s3 backend).
CREATE TABLE run_data_chunks (
    organization_id  uuid NOT NULL,
    run_id       uuid NOT NULL,
    byte_offset  bigint NOT NULL CHECK (byte_offset >= 0),
    size         integer NOT NULL CHECK (size > 0),
    data         bytea,
    part_number  integer,
    etag         text,
    PRIMARY KEY (run_id, byte_offset),
    FOREIGN KEY (organization_id, run_id) REFERENCES run_data (organization_id, run_id) ON DELETE CASCADE
);

-- Maintenance: what was done, by whom, and the calibration it produced.
ALTER TABLE maintenance ADD COLUMN title text CHECK (length(title) BETWEEN 1 AND 255);
ALTER TABLE maintenance ADD COLUMN performed_by uuid REFERENCES users (id);
ALTER TABLE maintenance ADD COLUMN calibration jsonb CHECK (jsonb_typeof(calibration) = 'object');
ALTER TABLE maintenance ADD COLUMN next_due_at timestamptz;
ALTER TABLE maintenance ADD COLUMN version bigint NOT NULL DEFAULT 1;
ALTER TABLE maintenance ADD CONSTRAINT maintenance_notes_length CHECK (length(notes) <= 10000);
ALTER TABLE maintenance ADD CONSTRAINT maintenance_org_id_key UNIQUE (organization_id, id);

GRANT SELECT, INSERT, UPDATE, DELETE ON instrument_commands, run_data, run_data_chunks TO antevus_app;

-- A removed instrument keeps its row (history stays readable) but frees its
-- serial number for a replacement.
ALTER TABLE instruments DROP CONSTRAINT instruments_organization_id_serial_number_key;
CREATE UNIQUE INDEX instruments_organization_id_serial_number_key
    ON instruments (organization_id, serial_number) WHERE deleted_at IS NULL;

-- Readings reported by instruments (through the edge bridge), for status
-- summaries and time-range charts.
CREATE TABLE readings (
    organization_id  uuid NOT NULL,
    instrument_id    uuid NOT NULL,
    metric           text NOT NULL CHECK (metric ~ '^[a-zA-Z][a-zA-Z0-9_.]{0,63}$'),
    value            double precision NOT NULL,
    unit             text CHECK (length(unit) <= 32),
    recorded_at      timestamptz NOT NULL,
    received_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (organization_id, instrument_id) REFERENCES instruments (organization_id, id)
);
CREATE INDEX readings_latest_idx ON readings (organization_id, instrument_id, metric, recorded_at DESC);
GRANT SELECT, INSERT, UPDATE, DELETE ON readings TO antevus_app;
