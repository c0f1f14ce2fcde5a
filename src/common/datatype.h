/* datatype: the five kinds of Flamingo data that sync. */
#ifndef FLM_DATATYPE_H
#define FLM_DATATYPE_H

enum data_type {
	DT_HISTORY = 0,
	DT_ENVIRONMENT,
	DT_SECRET,
	DT_COLLECTION,
	DT_SETTING,
	DT_COUNT
};

/* The wire name ("history", ...) of t; NULL when t is out of range. */
const char *datatype_name(int t);

/* The type named s (exact, lower case), or -1. */
int datatype_parse(const char *s);

#endif
