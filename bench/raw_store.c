/*
 * raw_store: the durable write rate of the store itself, as a ceiling for
 * PUT /api/sync/data/:type. SQLite with the server's pragmas (WAL,
 * synchronous=FULL), one upsert of a blob per transaction, for a given
 * time; prints "<writes> <seconds> <CPU seconds>" (user + system).
 *
 *   raw_store PATH BLOB_BYTES SECONDS
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
run(sqlite3 *db, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		fprintf(stderr, "raw_store: %s: %s\n", sql, err ? err : "?");
		sqlite3_free(err);
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	unsigned char *blob = NULL;
	long size, secs, n = 0;
	double t0, t;
	int rc = 1;

	if (argc != 4 || (size = atol(argv[2])) <= 0 ||
	    (secs = atol(argv[3])) <= 0) {
		fprintf(stderr, "usage: raw_store PATH BLOB_BYTES SECONDS\n");
		return 2;
	}
	if ((blob = malloc((size_t)size)) == NULL)
		return 1;
	memset(blob, 0xa5, (size_t)size);
	if (sqlite3_open(argv[1], &db) != SQLITE_OK ||
	    run(db, "PRAGMA journal_mode = WAL") != 0 ||
	    run(db, "PRAGMA synchronous = FULL") != 0 ||
	    run(db, "CREATE TABLE IF NOT EXISTS items (user_id TEXT, "
	    "type TEXT, version INTEGER, blob BLOB, "
	    "PRIMARY KEY (user_id, type)) STRICT") != 0 ||
	    sqlite3_prepare_v2(db, "INSERT INTO items VALUES "
	    "('u', 'history', 1, ?1) ON CONFLICT (user_id, type) DO UPDATE "
	    "SET version = version + 1, blob = excluded.blob", -1, &st,
	    NULL) != SQLITE_OK)
		goto out;
	t0 = now_s();
	do {
		if (run(db, "BEGIN IMMEDIATE") != 0 ||
		    sqlite3_bind_blob(st, 1, blob, (int)size,
		    SQLITE_STATIC) != SQLITE_OK ||
		    sqlite3_step(st) != SQLITE_DONE ||
		    sqlite3_reset(st) != SQLITE_OK || run(db, "COMMIT") != 0)
			goto out;
		n++;
		t = now_s() - t0;
	} while (t < (double)secs);
	{
		struct rusage ru;
		double cpu;

		getrusage(RUSAGE_SELF, &ru);
		cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
		printf("%ld %.3f %.3f\n", n, t, cpu);
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(blob);
	return rc;
}
