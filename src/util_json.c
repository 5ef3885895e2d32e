/*
 * util_json.c — a small JSON object builder for audit and event details.
 *
 * Owns: EltJson, the one way C code in this extension writes a JSON
 * document (the details of an audit row, of a deployment event, of a run
 * step).  Every key and every string value goes through escape_json, so a
 * name with a quote, a backslash or a newline in it still makes valid
 * jsonb; numbers and booleans are written as JSON literals; a value that is
 * already JSON text (the output of a jsonb column, a document built by
 * another EltJson) is embedded as it is.
 *
 * The builder keeps the nesting of the objects and arrays it has open, so
 * that commas are placed right: a key is given inside an object, NULL
 * inside an array.  No locking, no SPI; it allocates in the current memory
 * context.
 */
#include "postgres.h"

#include <math.h>

#include "utils/json.h"

#include "util.h"

/* Write the separator before the next member and, inside an object, its key. */
static void
json_member(EltJson *j, const char *key)
{
	Assert(j->depth > 0);
	if (!j->first[j->depth - 1])
		appendStringInfoString(&j->buf, ", ");
	j->first[j->depth - 1] = false;
	if (j->in_array[j->depth - 1])
		Assert(key == NULL);
	else
	{
		Assert(key != NULL);
		escape_json(&j->buf, key);
		appendStringInfoString(&j->buf, ": ");
	}
}

/* Open a nested object or array (the outermost one has no key). */
static void
json_open(EltJson *j, const char *key, bool array)
{
	if (j->depth >= ELT_JSON_MAX_DEPTH)
		elog(ERROR, "JSON document nested deeper than %d levels", ELT_JSON_MAX_DEPTH);
	if (j->depth > 0)
		json_member(j, key);
	appendStringInfoChar(&j->buf, array ? '[' : '{');
	j->first[j->depth] = true;
	j->in_array[j->depth] = array;
	j->depth++;
}

/* Close the innermost object or array, which must be of the kind given. */
static void
json_close(EltJson *j, bool array)
{
	if (j->depth == 0 || j->in_array[j->depth - 1] != array)
		elog(ERROR, "JSON builder closed a %s that is not open", array ? "array" : "object");
	j->depth--;
	appendStringInfoChar(&j->buf, array ? ']' : '}');
}

/* Start a document: an empty object, open. */
void
EltJsonBegin(EltJson *j)
{
	initStringInfo(&j->buf);
	j->depth = 0;
	json_open(j, NULL, false);
}

/*
 * Start a document that is an array (its members take a NULL key; an
 * object member is opened with EltJsonBeginObject(j, NULL)).
 */
void
EltJsonBeginList(EltJson *j)
{
	initStringInfo(&j->buf);
	j->depth = 0;
	json_open(j, NULL, true);
}

/*
 * Close the document, object or array as it was begun, and return its text;
 * every nested level must have been closed.
 */
char *
EltJsonFinish(EltJson *j)
{
	if (j->depth != 1)
		elog(ERROR, "JSON builder finished with %d levels open", j->depth);
	json_close(j, j->in_array[0]);
	return j->buf.data;
}

/* "key": "value", escaped; a NULL value is written as null. */
void
EltJsonString(EltJson *j, const char *key, const char *value)
{
	json_member(j, key);
	if (value == NULL)
		appendStringInfoString(&j->buf, "null");
	else
		escape_json(&j->buf, value);
}

/* "key": 123 */
void
EltJsonInt(EltJson *j, const char *key, int64 value)
{
	json_member(j, key);
	appendStringInfo(&j->buf, INT64_FORMAT, value);
}

/* "key": 1.5 (a non-finite value is written as null: JSON has no NaN) */
void
EltJsonFloat(EltJson *j, const char *key, double value)
{
	json_member(j, key);
	if (isnan(value) || isinf(value))
		appendStringInfoString(&j->buf, "null");
	else
		appendStringInfo(&j->buf, "%.17g", value);
}

/* "key": true / false */
void
EltJsonBool(EltJson *j, const char *key, bool value)
{
	json_member(j, key);
	appendStringInfoString(&j->buf, value ? "true" : "false");
}

/* "key": null */
void
EltJsonNull(EltJson *j, const char *key)
{
	json_member(j, key);
	appendStringInfoString(&j->buf, "null");
}

/*
 * "key": <json>, where json is already valid JSON text (a jsonb value's
 * output, another finished EltJson); NULL is written as null.  The caller
 * vouches for the text: it is not parsed here.
 */
void
EltJsonRaw(EltJson *j, const char *key, const char *json)
{
	json_member(j, key);
	appendStringInfoString(&j->buf, json ? json : "null");
}

/* "key": { ... opens a nested object; close it with EltJsonEndObject. */
void
EltJsonBeginObject(EltJson *j, const char *key)
{
	json_open(j, key, false);
}

/* Close the object opened last. */
void
EltJsonEndObject(EltJson *j)
{
	json_close(j, false);
}

/* "key": [ ... opens a nested array; its members take a NULL key. */
void
EltJsonBeginArray(EltJson *j, const char *key)
{
	json_open(j, key, true);
}

/* Close the array opened last. */
void
EltJsonEndArray(EltJson *j)
{
	json_close(j, true);
}
