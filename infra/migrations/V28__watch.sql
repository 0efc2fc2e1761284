-- The watch (issue 20): a scheduled job that publishes what no request
-- causes, the passing of time: a bridge gone silent, maintenance fallen
-- due, a calibration overdue. Each is published once for what it saw: the
-- row keeps the value it was published for (the last heartbeat, the
-- scheduled time, the calibration's due date), so a bridge that comes back
-- and goes silent again, or maintenance rescheduled and due again, is
-- published again, and nothing is published twice for one value.
ALTER TABLE bridges ADD COLUMN disconnect_published_for timestamptz;
ALTER TABLE maintenance ADD COLUMN due_published_for timestamptz;
ALTER TABLE instruments ADD COLUMN calibration_overdue_published_for timestamptz;

-- Up to p_limit of each kind not yet published, of every organization,
-- oldest first, with what the event says: bridges of a live key (active, not expired)
-- whose last heartbeat is older than p_silent_seconds; scheduled
-- maintenance whose time has come, of instruments not deleted; instruments
-- not deleted whose calibration is past due. Read only: publishing is the
-- organization's own statement, which checks again.
CREATE FUNCTION watch_due(p_limit integer, p_silent_seconds integer)
RETURNS TABLE (kind text, organization_id uuid, record_id uuid, seen timestamptz, details jsonb)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    (SELECT 'bridge.disconnected', b.organization_id, b.id, b.last_heartbeat_at,
            jsonb_build_object('name', b.name, 'hostname', b.hostname)
       FROM bridges b JOIN api_keys k ON k.id = b.api_key_id
      WHERE b.last_heartbeat_at < now() - make_interval(secs => p_silent_seconds)
        AND b.disconnect_published_for IS DISTINCT FROM b.last_heartbeat_at
        AND k.is_active AND (k.expires_at IS NULL OR k.expires_at > now())
      ORDER BY b.last_heartbeat_at LIMIT p_limit)
    UNION ALL
    (SELECT 'maintenance.due', m.organization_id, m.id, m.scheduled_for,
            jsonb_build_object('instrumentId', m.instrument_id, 'kind', m.kind, 'title', m.title)
       FROM maintenance m
       JOIN instruments i ON i.organization_id = m.organization_id AND i.id = m.instrument_id
      WHERE m.status = 'scheduled' AND m.scheduled_for <= now()
        AND m.due_published_for IS DISTINCT FROM m.scheduled_for
        AND i.deleted_at IS NULL
      ORDER BY m.scheduled_for LIMIT p_limit)
    UNION ALL
    (SELECT 'calibration.overdue', i.organization_id, i.id, i.calibration_due_at,
            jsonb_build_object('name', i.name)
       FROM instruments i
      WHERE i.calibration_due_at <= now()
        AND i.calibration_overdue_published_for IS DISTINCT FROM i.calibration_due_at
        AND i.deleted_at IS NULL
      ORDER BY i.calibration_due_at LIMIT p_limit)
$$;

REVOKE ALL ON FUNCTION watch_due(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION watch_due(integer, integer) TO antevus_app;

CREATE INDEX maintenance_due_idx ON maintenance (scheduled_for) WHERE status = 'scheduled';
CREATE INDEX instruments_calibration_due_idx ON instruments (calibration_due_at)
    WHERE calibration_due_at IS NOT NULL AND deleted_at IS NULL;
