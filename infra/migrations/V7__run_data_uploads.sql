-- Resumable run data uploads: the SHA-256 state of the bytes received so
-- far (chunks arrive in order; the digest is final when the last lands),
-- and when the upload last moved.
ALTER TABLE run_data ADD COLUMN hash_state bytea;
ALTER TABLE run_data ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE run_data ADD CONSTRAINT run_data_complete_has_digest
    CHECK (status <> 'complete' OR (sha256 IS NOT NULL AND received_bytes = total_bytes));

-- The instrument list sorted by name (`?sort=name`), keyset-paginated.
CREATE INDEX instruments_name_idx ON instruments (organization_id, name, id) WHERE deleted_at IS NULL;
