-- 001_init: the first schema of flamingo-syncd on PostgreSQL.
--
-- The same tables and meaning as migrations/sqlite/001_init.sql, so that
-- both backends answer alike. Times are bigint milliseconds since the
-- epoch; token hashes are 32-byte bytea (SHA-256); user and device ids are
-- text UUIDs; flags are integer 0/1 (as on SQLite); data types are stored
-- by name. "None" is NULL for optional references.
--
-- Historical rows (audit, events, data authorship, key authorship) carry no
-- foreign keys on purpose: they record what happened and must never block
-- or be blocked by a change elsewhere.
--
-- Every table that holds a user's rows leads its key with user_id, so that
-- a sharded PostgreSQL (e.g. Citus) can distribute them by user_id.

CREATE TABLE users (
	id            text PRIMARY KEY,
	email         text NOT NULL,
	password_hash text NOT NULL,
	created_at    bigint NOT NULL
);
-- SQLite's COLLATE NOCASE: one account per email, whatever the case of
-- its ASCII letters (under the "C" collation lower() folds ASCII only, as
-- NOCASE does, whatever the database's locale)
CREATE UNIQUE INDEX users_email ON users (lower(email COLLATE "C"));

CREATE TABLE web_sessions (
	hash          bytea PRIMARY KEY CHECK (octet_length(hash) = 32),
	user_id       text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	created_at    bigint NOT NULL,
	last_used_at  bigint NOT NULL,
	expires_at    bigint NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions(user_id);
CREATE INDEX web_sessions_expires ON web_sessions(expires_at);

CREATE TABLE devices (
	id            text PRIMARY KEY,
	user_id       text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	name          text NOT NULL,
	platform      text NOT NULL,
	app_version   text NOT NULL,
	status        integer NOT NULL DEFAULT 0,
	created_at    bigint NOT NULL,
	last_seen_at  bigint NOT NULL DEFAULT 0,
	last_ip       text NOT NULL DEFAULT '',
	-- insertion order, the tie-break of device_list (SQLite's rowid)
	seq           bigint GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX devices_user ON devices(user_id, created_at);

CREATE TABLE device_requests (
	id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	temp_hash     bytea NOT NULL UNIQUE CHECK (octet_length(temp_hash) = 32),
	user_code     text NOT NULL UNIQUE,
	device_name   text NOT NULL,
	platform      text NOT NULL,
	app_version   text NOT NULL,
	ip            text NOT NULL,
	created_at    bigint NOT NULL,
	expires_at    bigint NOT NULL,
	state         integer NOT NULL DEFAULT 0,
	user_id       text REFERENCES users(id) ON DELETE CASCADE,
	device_id     text REFERENCES devices(id) ON DELETE SET NULL,
	interval_s    integer NOT NULL,
	last_poll_at  bigint NOT NULL DEFAULT 0
);
CREATE INDEX device_requests_expires ON device_requests(expires_at);
CREATE INDEX device_requests_user ON device_requests(user_id);
CREATE INDEX device_requests_device ON device_requests(device_id);

CREATE TABLE sessions (
	id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	user_id       text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	device_id     text NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
	created_at    bigint NOT NULL,
	expires_at    bigint NOT NULL,
	revoked_at    bigint NOT NULL DEFAULT 0
);
CREATE INDEX sessions_device ON sessions(device_id);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE INDEX sessions_expires ON sessions(expires_at);
CREATE INDEX sessions_revoked ON sessions(revoked_at) WHERE revoked_at > 0;

CREATE TABLE tokens (
	hash          bytea PRIMARY KEY CHECK (octet_length(hash) = 32),
	session_id    bigint NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
	created_at    bigint NOT NULL,
	used          integer NOT NULL DEFAULT 0,
	successor     bytea CHECK (successor IS NULL OR
	                  octet_length(successor) = 32),
	grace_until   bigint NOT NULL DEFAULT 0
);
CREATE INDEX tokens_session ON tokens(session_id);

CREATE TABLE sync_config (
	user_id       text PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
	history       integer NOT NULL,
	environment   integer NOT NULL,
	secret        integer NOT NULL,
	collection    integer NOT NULL,
	setting       integer NOT NULL,
	updated_at    bigint NOT NULL
);

-- Every version of the wrapped master key is kept.
CREATE TABLE keys (
	user_id       text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	version       integer NOT NULL CHECK (version > 0),
	wrapped       bytea NOT NULL,
	kdf           text NOT NULL,
	created_at    bigint NOT NULL,
	created_by_device text,
	PRIMARY KEY (user_id, version)
);

-- The head of each data type: metadata and version only. The ciphertext
-- lives once, in data_revisions, joined on (user_id, type, version).
CREATE TABLE data_heads (
	user_id       text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	type          text NOT NULL CHECK (type IN ('history', 'environment',
	                  'secret', 'collection', 'setting')),
	version       bigint NOT NULL,
	key_version   integer NOT NULL,
	size          bigint NOT NULL,
	updated_at    bigint NOT NULL,
	updated_by_device text,
	deleted       integer NOT NULL DEFAULT 0,
	PRIMARY KEY (user_id, type)
);

CREATE TABLE data_revisions (
	user_id       text NOT NULL,
	type          text NOT NULL,
	version       bigint NOT NULL,
	key_version   integer NOT NULL,
	size          bigint NOT NULL,
	updated_at    bigint NOT NULL,
	updated_by_device text,
	blob          bytea NOT NULL,
	PRIMARY KEY (user_id, type, version),
	FOREIGN KEY (user_id, type) REFERENCES data_heads(user_id, type)
	    ON DELETE CASCADE
);

CREATE TABLE audit (
	user_id       text NOT NULL,
	id            bigint GENERATED ALWAYS AS IDENTITY,
	event_type    text NOT NULL,
	device_id     text,
	ip            text NOT NULL DEFAULT '',
	user_agent    text,
	metadata      text,
	created_at    bigint NOT NULL,
	PRIMARY KEY (user_id, id)
);

-- Event ids must grow per user in commit order: a long-poll that has
-- seen id N asks for ids > N, so a number handed out earlier but committed
-- later would be missed. A sequence alone cannot promise that (its numbers
-- are handed out at insert, not at commit). So event_insert first takes
-- the user's row in event_counters (an upsert, which holds that row's lock
-- until commit) and only then draws the id from the sequence, never below
-- the user's last one: the next event of that user waits for the lock, and
-- so draws a greater id, after this one has committed. Ids stay unique
-- across users, as on SQLite.
CREATE SEQUENCE event_ids;
CREATE TABLE event_counters (
	user_id       text PRIMARY KEY,
	last_id       bigint NOT NULL
);

CREATE TABLE events (
	user_id       text NOT NULL,
	id            bigint NOT NULL,
	type          text NOT NULL,
	data_type     text,
	version       bigint NOT NULL DEFAULT 0,
	origin_device_id text,
	created_at    bigint NOT NULL,
	PRIMARY KEY (user_id, id)
);

CREATE TABLE rate_limits (
	key           text PRIMARY KEY,
	window_start  bigint NOT NULL,
	count         bigint NOT NULL,
	blocked_until bigint NOT NULL,
	expires_at    bigint NOT NULL
);
CREATE INDEX rate_limits_expires ON rate_limits(expires_at);
