/*
 * util_sql.c — SQL text normalized for a code hash.
 *
 * Owns: EltNormalizeSql, the one normal form of a transform's SQL: a
 * version's code hash is the SHA-256 of it (transform.c), a replay checks a
 * recorded step's code hash against it (replay.c) and the audit check
 * recomputes it (audit_verify.c).  A change here changes every code hash.
 * Calls nothing of the extension; no locking, no SPI.
 */
#include "postgres.h"

#include <ctype.h>

#include "util.h"


static bool
word_char(char c)
{
	return isalnum((unsigned char) c) || c == '_' || c == '$' || c == '"' ||
		c == '\'' || IS_HIGHBIT_SET(c);
}

static bool
op_char(char c)
{
	return strchr("+-*/<>=~!@#%^&|`?", c) != NULL;
}

/*
 * The SQL with comments removed, whitespace runs collapsed (and dropped
 * where no token boundary needs them), text outside quotes lower-cased (the
 * parser folds it anyway) and trailing semicolons removed.  Quoted
 * identifiers, string and dollar-quoted literals are kept as they are.
 */
char *
EltNormalizeSql(const char *sql)
{
	StringInfoData out;
	const char *p = sql;
	bool		pending_space = false;

	initStringInfo(&out);
	while (*p)
	{
		if (isspace((unsigned char) *p))
		{
			pending_space = true;
			p++;
			continue;
		}
		if (p[0] == '-' && p[1] == '-')
		{
			while (*p && *p != '\n')
				p++;
			pending_space = true;
			continue;
		}
		if (p[0] == '/' && p[1] == '*')
		{
			int			depth = 0;

			do
			{
				if (p[0] == '/' && p[1] == '*')
				{
					depth++;
					p += 2;
				}
				else if (p[0] == '*' && p[1] == '/')
				{
					depth--;
					p += 2;
				}
				else
					p++;
			} while (*p && depth > 0);
			pending_space = true;
			continue;
		}
		if (pending_space && out.len > 0)
		{
			char		prev = out.data[out.len - 1];

			if ((word_char(prev) && word_char(*p)) || (op_char(prev) && op_char(*p)))
				appendStringInfoChar(&out, ' ');
		}
		pending_space = false;

		if (*p == '\'' || *p == '"')
		{
			char		q = *p;
			bool		escapes = (q == '\'' && p > sql &&
								   (p[-1] == 'e' || p[-1] == 'E') &&
								   (p - 1 == sql || !word_char(p[-2])));

			appendStringInfoChar(&out, *p++);
			while (*p)
			{
				if (escapes && *p == '\\' && p[1])
				{
					appendStringInfoChar(&out, *p++);
					appendStringInfoChar(&out, *p++);
					continue;
				}
				if (*p == q)
				{
					appendStringInfoChar(&out, *p++);
					if (*p == q)
					{
						appendStringInfoChar(&out, *p++);
						continue;
					}
					break;
				}
				appendStringInfoChar(&out, *p++);
			}
			continue;
		}
		if (*p == '$' && (out.len == 0 || !word_char(out.data[out.len - 1]) ||
						  out.data[out.len - 1] == '$'))
		{
			/* a dollar quote: $tag$ ... $tag$ */
			const char *end = p + 1;

			while (*end && (isalnum((unsigned char) *end) || *end == '_'))
				end++;
			if (*end == '$' && !isdigit((unsigned char) p[1]))
			{
				int			taglen = end - p + 1;
				const char *close = strstr(end + 1, pnstrdup(p, taglen));

				if (close != NULL)
				{
					appendBinaryStringInfo(&out, p, close + taglen - p);
					p = close + taglen;
					continue;
				}
			}
		}
		appendStringInfoChar(&out, pg_tolower((unsigned char) *p));
		p++;
	}
	while (out.len > 0 && (out.data[out.len - 1] == ';' || out.data[out.len - 1] == ' '))
		out.data[--out.len] = '\0';
	return out.data;
}
