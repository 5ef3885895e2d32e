/*
 * versions_store.h — the version store: elt.tracked_tables and
 * elt.schema_versions (versions_store.c).
 */
#ifndef ELT_VERSIONS_STORE_H
#define ELT_VERSIONS_STORE_H

#include "postgres.h"

#include "util.h"

extern void EltLockTableHistory(Oid relid);
extern int64 EltEnsureTracked(Oid relid);
extern void EltCheckHistoryVisible(int64 table_id, const char *nspname,
								   const char *relname);
extern void EltInsertVersion(EltCatalogWrite *cw, int64 table_id, int32 version,
							 Oid relid, const char *nspname, const char *relname,
							 const char *event, Datum shape, const char *command_tag,
							 const char *statement, const char *reason);
extern int	EltRecordVersion(EltCatalogWrite *cw, Oid relid, const char *event,
							 const char *command_tag, const char *statement,
							 const char *reason, bool only_if_changed);
extern bool EltTakeBackNewHistory(Oid relid);
extern bool EltTakeOverHistory(Oid old_relid, Oid new_relid);
extern char *EltDetachHistory(Oid relid, int64 *table_id);
extern void EltRenameSchemaHistories(Oid nspoid, const char *newname);

#endif							/* ELT_VERSIONS_STORE_H */
