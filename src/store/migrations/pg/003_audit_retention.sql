-- Audit retention: rows older than AUDIT_RETENTION_DAYS are pruned, oldest
-- first, in batches.
CREATE INDEX audit_created ON audit (created_at);
