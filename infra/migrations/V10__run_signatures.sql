-- Electronic signatures of runs (21 CFR Part 11, 11.50 / 11.70 / 11.200).
-- A signature names the signer (printed name), when (server UTC), its
-- meaning, and the exact run version it covers (by version and by a hash of
-- the run's content); `signature` is an HMAC over all of that and the run's
-- id, made with the audit key, so it cannot be moved to another record.
CREATE TABLE run_signatures (
    id               uuid PRIMARY KEY,
    organization_id  uuid NOT NULL,
    run_id           uuid NOT NULL,
    signer_id        uuid NOT NULL REFERENCES users (id),
    printed_name     text NOT NULL CHECK (length(printed_name) BETWEEN 1 AND 255),
    meaning          text NOT NULL CHECK (meaning IN ('review', 'approval', 'responsibility', 'authorship')),
    comment          text CHECK (length(comment) <= 1000),
    run_version      bigint NOT NULL,
    run_hash         bytea NOT NULL,
    signed_at        timestamptz NOT NULL,
    session_id       uuid,
    key_id           text NOT NULL,
    signature        bytea NOT NULL,
    FOREIGN KEY (organization_id, run_id) REFERENCES runs (organization_id, id)
);
CREATE INDEX run_signatures_run_idx ON run_signatures (organization_id, run_id, signed_at);
CREATE INDEX run_signatures_session_idx ON run_signatures (session_id);

CREATE TRIGGER run_signatures_immutable BEFORE UPDATE OR DELETE ON run_signatures
    FOR EACH ROW EXECUTE FUNCTION audit_events_immutable();

GRANT SELECT, INSERT ON run_signatures TO antevus_app;
