-- 001_init: the first schema of flamingo-syncd on SQLite.
--
-- Conventions: times are INTEGER milliseconds since the epoch; token hashes
-- are 32-byte BLOBs (SHA-256); user and device ids are TEXT UUIDs; booleans
-- are INTEGER 0/1; data types are stored by name ('history', ...) so that
-- the file does not depend on the order of a C enum. "None" is NULL for
-- optional references, so that foreign keys hold.
--
-- Historical rows (audit, events, data authorship, key authorship) carry no
-- foreign keys on purpose: they record what happened and must never block
-- or be blocked by a change elsewhere.

CREATE TABLE users (
	id            TEXT PRIMARY KEY,
	email         TEXT NOT NULL COLLATE NOCASE UNIQUE,
	password_hash TEXT NOT NULL,
	created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE web_sessions (
	hash          BLOB PRIMARY KEY CHECK (length(hash) = 32),
	user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	created_at    INTEGER NOT NULL,
	last_used_at  INTEGER NOT NULL,
	expires_at    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX web_sessions_user ON web_sessions(user_id);
CREATE INDEX web_sessions_expires ON web_sessions(expires_at);

CREATE TABLE devices (
	id            TEXT PRIMARY KEY,
	user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	name          TEXT NOT NULL,
	platform      TEXT NOT NULL,
	app_version   TEXT NOT NULL,
	status        INTEGER NOT NULL DEFAULT 0,
	created_at    INTEGER NOT NULL,
	last_seen_at  INTEGER NOT NULL DEFAULT 0,
	last_ip       TEXT NOT NULL DEFAULT ''
) STRICT;
-- device_list: a user's devices, newest first
CREATE INDEX devices_user ON devices(user_id, created_at);

CREATE TABLE device_requests (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	temp_hash     BLOB NOT NULL UNIQUE CHECK (length(temp_hash) = 32),
	user_code     TEXT NOT NULL UNIQUE,
	device_name   TEXT NOT NULL,
	platform      TEXT NOT NULL,
	app_version   TEXT NOT NULL,
	ip            TEXT NOT NULL,
	created_at    INTEGER NOT NULL,
	expires_at    INTEGER NOT NULL,
	state         INTEGER NOT NULL DEFAULT 0,
	user_id       TEXT REFERENCES users(id) ON DELETE CASCADE,
	device_id     TEXT REFERENCES devices(id) ON DELETE SET NULL,
	interval_s    INTEGER NOT NULL,
	last_poll_at  INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX device_requests_expires ON device_requests(expires_at);
-- child-key indexes, so that deleting a user or device does not scan
CREATE INDEX device_requests_user ON device_requests(user_id);
CREATE INDEX device_requests_device ON device_requests(device_id);

CREATE TABLE sessions (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	device_id     TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
	created_at    INTEGER NOT NULL,
	expires_at    INTEGER NOT NULL,
	revoked_at    INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX sessions_device ON sessions(device_id);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE INDEX sessions_expires ON sessions(expires_at);
CREATE INDEX sessions_revoked ON sessions(revoked_at) WHERE revoked_at > 0;

CREATE TABLE tokens (
	hash          BLOB PRIMARY KEY CHECK (length(hash) = 32),
	session_id    INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
	created_at    INTEGER NOT NULL,
	used          INTEGER NOT NULL DEFAULT 0,
	successor     BLOB CHECK (successor IS NULL OR length(successor) = 32),
	grace_until   INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;
CREATE INDEX tokens_session ON tokens(session_id);

CREATE TABLE sync_config (
	user_id       TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
	history       INTEGER NOT NULL,
	environment   INTEGER NOT NULL,
	secret        INTEGER NOT NULL,
	collection    INTEGER NOT NULL,
	setting       INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Every version of the wrapped master key is kept.
CREATE TABLE keys (
	user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	version       INTEGER NOT NULL CHECK (version > 0),
	wrapped       BLOB NOT NULL,
	kdf           TEXT NOT NULL,
	created_at    INTEGER NOT NULL,
	created_by_device TEXT,
	UNIQUE (user_id, version)
) STRICT;

-- The head of each data type: metadata and version only. The ciphertext
-- lives once, in data_revisions, joined on (user_id, type, version).
CREATE TABLE data_heads (
	user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	type          TEXT NOT NULL CHECK (type IN ('history', 'environment',
	                  'secret', 'collection', 'setting')),
	version       INTEGER NOT NULL,
	key_version   INTEGER NOT NULL,
	size          INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL,
	updated_by_device TEXT,
	deleted       INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (user_id, type)
) STRICT, WITHOUT ROWID;

-- A rowid table: its rows hold blobs of up to MAX_BLOB_BYTES.
CREATE TABLE data_revisions (
	user_id       TEXT NOT NULL,
	type          TEXT NOT NULL,
	version       INTEGER NOT NULL,
	key_version   INTEGER NOT NULL,
	size          INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL,
	updated_by_device TEXT,
	blob          BLOB NOT NULL,
	UNIQUE (user_id, type, version),
	FOREIGN KEY (user_id, type) REFERENCES data_heads(user_id, type)
	    ON DELETE CASCADE
) STRICT;

CREATE TABLE audit (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	user_id       TEXT NOT NULL,
	event_type    TEXT NOT NULL,
	device_id     TEXT,
	ip            TEXT NOT NULL DEFAULT '',
	user_agent    TEXT,
	metadata      TEXT,
	created_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX audit_user ON audit(user_id, id);

CREATE TABLE events (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	user_id       TEXT NOT NULL,
	type          TEXT NOT NULL,
	data_type     TEXT,
	version       INTEGER NOT NULL DEFAULT 0,
	origin_device_id TEXT,
	created_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX events_user ON events(user_id, id);

CREATE TABLE rate_limits (
	key           TEXT PRIMARY KEY,
	window_start  INTEGER NOT NULL,
	count         INTEGER NOT NULL,
	blocked_until INTEGER NOT NULL,
	expires_at    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX rate_limits_expires ON rate_limits(expires_at);
