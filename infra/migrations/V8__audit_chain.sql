-- Tamper evidence for the audit trail (21 CFR Part 11).
--
-- Each organization's events (and the system's, without an organization)
-- form one chain: `sequence` counts 1, 2, 3 ... without gaps, and
--   hash = SHA-256(previous_hash || sequence as 8 bytes big-endian || content_hash)
-- where `content_hash` is the SHA-256 of the event's canonical encoding,
-- computed by the application, which also signs it:
--   signature = HMAC-SHA256(key `key_id`, content_hash).
-- The chain is assigned here, under a lock on the chain's head, so
-- concurrent writers cannot fork it. Signed checkpoints of the head (made by
-- the application, which holds the keys) pin the chain so that rewriting or
-- cutting it off after a checkpoint is detected.

ALTER TABLE audit_events ADD COLUMN chain_id uuid;
ALTER TABLE audit_events ADD COLUMN sequence bigint;
ALTER TABLE audit_events ADD COLUMN previous_hash bytea;
ALTER TABLE audit_events ADD COLUMN hash bytea;
ALTER TABLE audit_events ADD COLUMN content_hash bytea;
ALTER TABLE audit_events ADD COLUMN signature bytea;
ALTER TABLE audit_events ADD COLUMN key_id text;

CREATE TABLE audit_chain_heads (
    chain_id         uuid PRIMARY KEY,
    organization_id  uuid REFERENCES organizations (id),
    sequence         bigint NOT NULL,
    hash             bytea NOT NULL
);

-- Events recorded before this migration join the chain in the order they
-- were written; they carry no content hash or signature (`key_id` legacy).
WITH ordered AS (
    SELECT id, coalesce(organization_id, '00000000-0000-0000-0000-000000000000'::uuid) AS chain,
           row_number() OVER (PARTITION BY organization_id ORDER BY created_at, id) AS n
    FROM audit_events
)
UPDATE audit_events e SET chain_id = o.chain, sequence = o.n, key_id = 'legacy'
FROM ordered o WHERE o.id = e.id;

DO $$
DECLARE
    row record;
    head bytea;
    current_chain uuid;
BEGIN
    FOR row IN SELECT id, chain_id, sequence FROM audit_events ORDER BY chain_id, sequence LOOP
        IF current_chain IS DISTINCT FROM row.chain_id THEN
            current_chain := row.chain_id;
            head := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
        END IF;
        UPDATE audit_events
           SET previous_hash = head,
               content_hash = sha256(convert_to(row.id::text, 'UTF8')),
               hash = sha256(head || int8send(row.sequence) || sha256(convert_to(row.id::text, 'UTF8')))
         WHERE id = row.id
        RETURNING hash INTO head;
        INSERT INTO audit_chain_heads (chain_id, organization_id, sequence, hash)
        VALUES (row.chain_id, nullif(row.chain_id, '00000000-0000-0000-0000-000000000000'::uuid), row.sequence, head)
        ON CONFLICT (chain_id) DO UPDATE SET sequence = EXCLUDED.sequence, hash = EXCLUDED.hash;
    END LOOP;
END $$;

ALTER TABLE audit_events ALTER COLUMN chain_id SET NOT NULL;
ALTER TABLE audit_events ALTER COLUMN sequence SET NOT NULL;
ALTER TABLE audit_events ALTER COLUMN previous_hash SET NOT NULL;
ALTER TABLE audit_events ALTER COLUMN hash SET NOT NULL;
ALTER TABLE audit_events ALTER COLUMN content_hash SET NOT NULL;
ALTER TABLE audit_events ALTER COLUMN key_id SET NOT NULL;
CREATE UNIQUE INDEX audit_events_chain_idx ON audit_events (chain_id, sequence);

CREATE FUNCTION audit_events_chain() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    previous bytea;
    last bigint;
BEGIN
    IF NEW.content_hash IS NULL OR NEW.key_id IS NULL THEN
        RAISE EXCEPTION 'audit events must carry their content hash and key id';
    END IF;
    NEW.chain_id := coalesce(NEW.organization_id, '00000000-0000-0000-0000-000000000000'::uuid);
    INSERT INTO audit_chain_heads (chain_id, organization_id, sequence, hash)
    VALUES (NEW.chain_id, NEW.organization_id, 0, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea)
    ON CONFLICT (chain_id) DO NOTHING;
    SELECT sequence, hash INTO last, previous FROM audit_chain_heads WHERE chain_id = NEW.chain_id FOR UPDATE;
    NEW.sequence := last + 1;
    NEW.previous_hash := previous;
    NEW.hash := sha256(previous || int8send(NEW.sequence) || NEW.content_hash);
    UPDATE audit_chain_heads SET sequence = NEW.sequence, hash = NEW.hash WHERE chain_id = NEW.chain_id;
    RETURN NEW;
END $$;

CREATE TRIGGER audit_events_chain BEFORE INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_chain();

-- Recorded events are never changed or removed through SQL, whoever asks
-- (the application role also lacks the privileges).
CREATE FUNCTION audit_events_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_immutable();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_immutable();

-- Signed checkpoints of each chain's head.
CREATE TABLE audit_checkpoints (
    id               uuid PRIMARY KEY,
    organization_id  uuid,
    chain_id         uuid NOT NULL,
    sequence         bigint NOT NULL CHECK (sequence >= 0),
    hash             bytea NOT NULL,
    signature        bytea NOT NULL,
    key_id           text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (chain_id, sequence)
);
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_events_immutable();

GRANT SELECT, INSERT ON audit_checkpoints TO antevus_app;
GRANT SELECT ON audit_chain_heads TO antevus_app;
