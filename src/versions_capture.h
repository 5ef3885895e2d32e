/*
 * versions_capture.h — schema versions recorded by event triggers.
 */
#ifndef ELT_VERSIONS_CAPTURE_H
#define ELT_VERSIONS_CAPTURE_H

#include "postgres.h"

#include "util.h"

extern void EltDdlCaptureInit(void);
extern char *EltCurrentStatement(void);
extern int	EltRecordVersion(EltCatalogWrite *cw, Oid relid, const char *event,
							 const char *command_tag, const char *statement,
							 const char *reason, bool only_if_changed);
extern bool EltAnyTarget(void);
extern bool EltTableInScope(Oid relid, bool *tracked);
extern int64 EltEnsureTracked(Oid relid);
extern List *EltSchemaTables(Oid nspoid, List *tables);

#endif							/* ELT_VERSIONS_CAPTURE_H */
