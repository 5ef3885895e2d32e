/*
 * settings.h — session state several engines read: the elt.* settings they
 * share and the text of the statement being run (settings.c).
 */
#ifndef ELT_SETTINGS_H
#define ELT_SETTINGS_H

#include "postgres.h"

/* elt.enabled: superuser-only switch; off skips all DDL capture */
extern bool elt_enabled;
/* elt.reason: recorded as the reason of governance actions of the session */
extern char *elt_reason;

/* Where the text of the utility statement being run lies (see settings.c). */
typedef struct EltStatementText
{
	const char *source;
	int			location;
	int			len;
} EltStatementText;

extern void EltStatementEnter(const char *source, int location, int len,
							  EltStatementText *saved);
extern void EltStatementLeave(const EltStatementText *saved);
extern char *EltCurrentStatement(void);

/* Views created by the running transaction (see settings.c). */
extern void EltNoteCreatedView(Oid relid);
extern bool EltViewCreatedNow(Oid relid);
extern void EltNoteCreatedTable(Oid relid);
extern bool EltTableCreatedNow(Oid relid);

#endif							/* ELT_SETTINGS_H */
