#include "datatype.h"

#include <string.h>

/* Indexed by enum data_type; the wire names are part of the API. */
static const char *const datatype_names[DT_COUNT] = {
	[DT_HISTORY] = "history",
	[DT_ENVIRONMENT] = "environment",
	[DT_SECRET] = "secret",
	[DT_COLLECTION] = "collection",
	[DT_SETTING] = "setting",
};

const char *
datatype_name(int t)
{
	if (t < 0 || t >= DT_COUNT)
		return NULL;
	return datatype_names[t];
}

int
datatype_parse(const char *s)
{
	int t;

	if (s == NULL)
		return -1;
	for (t = 0; t < DT_COUNT; t++)
		if (strcmp(s, datatype_names[t]) == 0)
			return t;
	return -1;
}
