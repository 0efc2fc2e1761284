-- An instrument is served by one bridge: only that bridge reports its
-- readings and status and takes its commands. The first bridge to report
-- an unbound instrument binds it (audited); an administrator may move it
-- to another bridge, or unbind it, by updating the instrument.
ALTER TABLE instruments ADD COLUMN bridge_id uuid;
ALTER TABLE instruments ADD CONSTRAINT instruments_bridge_fk
    FOREIGN KEY (organization_id, bridge_id) REFERENCES bridges (organization_id, id);
CREATE INDEX instruments_bridge_idx ON instruments (organization_id, bridge_id);

-- An instrument that one bridge in service (its key active) alone reaches
-- today is bound to it; one that several reach stays unbound until one of
-- them reports it. Revoking a bridge's key releases its instruments.
UPDATE instruments i SET bridge_id = sole.bridge_id
FROM (SELECT b.organization_id, r.value::uuid AS instrument_id, min(b.id::text)::uuid AS bridge_id
      FROM bridges b
      JOIN api_keys k ON k.id = b.api_key_id AND k.is_active,
      jsonb_array_elements_text(b.connected_instruments) r
      GROUP BY b.organization_id, r.value
      HAVING count(*) = 1) sole
WHERE i.organization_id = sole.organization_id AND i.id = sole.instrument_id;
