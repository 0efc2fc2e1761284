-- Whether the last check of a key started a block: the start of a block is
-- audited once (RATE_LIMIT_BLOCKED), not every request it refuses.
ALTER TABLE rate_limits ADD COLUMN block_started boolean NOT NULL DEFAULT false;
