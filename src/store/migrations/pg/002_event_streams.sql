-- Event streams: the device a device_revoked event is about, event
-- retention, and the per-user mark below which events were pruned (a client
-- asking for an older id is told to resynchronise).
ALTER TABLE events ADD COLUMN device_id text;
CREATE INDEX events_created ON events (created_at);
CREATE TABLE event_floors (
	user_id        text PRIMARY KEY,
	pruned_through bigint NOT NULL
);
