-- Client reports made without credentials (POST /api/audit, stored as
-- CLIENT_* events of no organization) go on a chain of their own. They
-- used to share the system chain with failed logins, resets and lockouts,
-- whose single head row every insert locks: a flood of anonymous reports
-- slowed everyone's security events. Everything else is as in V8.
CREATE OR REPLACE FUNCTION audit_events_chain() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    previous bytea;
    last bigint;
BEGIN
    IF NEW.content_hash IS NULL OR NEW.key_id IS NULL THEN
        RAISE EXCEPTION 'audit events must carry their content hash and key id';
    END IF;
    NEW.chain_id := CASE
        WHEN NEW.organization_id IS NOT NULL THEN NEW.organization_id
        WHEN NEW.event_type LIKE 'CLIENT\_%' THEN '00000000-0000-0000-0000-000000000001'::uuid
        ELSE '00000000-0000-0000-0000-000000000000'::uuid
    END;
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
