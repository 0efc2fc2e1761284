-- The live path (issue 6): reading batches from edge bridges.
--
-- A bridge's disk queue numbers its records 1, 2, 3... within a stream (a
-- random id made with the queue), and the cloud keeps, per stream, the
-- highest sequence it has stored: a batch is stored only from there on, so a
-- batch sent again after a lost acknowledgement or a crash changes nothing,
-- and a batch that would leave a gap is refused.
CREATE TABLE bridge_streams (
    bridge_id        uuid NOT NULL REFERENCES bridges (id),
    stream_id        uuid NOT NULL,
    organization_id  uuid NOT NULL REFERENCES organizations (id),
    acked_sequence   bigint NOT NULL DEFAULT 0 CHECK (acked_sequence >= 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bridge_id, stream_id)
);
GRANT SELECT, INSERT, UPDATE ON bridge_streams TO antevus_app;

-- Every reading names the bridge, stream and sequence it came with: its
-- provenance, and the order it was taken in.
ALTER TABLE readings ADD COLUMN bridge_id uuid REFERENCES bridges (id);
ALTER TABLE readings ADD COLUMN stream_id uuid;
ALTER TABLE readings ADD COLUMN sequence bigint CHECK (sequence > 0);
-- Time-range scans of one instrument over every metric (charts, downsampling).
CREATE INDEX readings_range_idx ON readings (organization_id, instrument_id, recorded_at);
-- Readings are instrument data: added, and removed only by retention; never edited.
REVOKE UPDATE ON readings FROM antevus_app;

-- Which bridge a command was handed to, so only that bridge reports on it.
ALTER TABLE instrument_commands ADD COLUMN bridge_id uuid REFERENCES bridges (id);
-- Commands waiting for a bridge, oldest first, across an organization.
CREATE INDEX instrument_commands_queued_idx
    ON instrument_commands (organization_id, created_at) WHERE status = 'queued';
