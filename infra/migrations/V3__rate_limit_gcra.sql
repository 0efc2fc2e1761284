-- Rate limiting is GCRA: one theoretical arrival time per key, updated by a
-- single INSERT ... ON CONFLICT DO UPDATE per check, so concurrent function
-- instances serialise on the row and never admit more than the limit.
ALTER TABLE rate_limits
    ADD COLUMN tat           timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN last_allowed  boolean NOT NULL DEFAULT true;
CREATE INDEX rate_limits_stale_idx ON rate_limits (tat);
