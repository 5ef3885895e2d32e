/*
 * govern.h — governed targets (elt.governed_targets): which tables are
 * governed, and the changes of targets that DDL causes (govern.c).
 */
#ifndef ELT_GOVERN_H
#define ELT_GOVERN_H

#include "postgres.h"

#include "util.h"

/* govern_lookup.c */
extern bool EltAnyTarget(void);
extern const char *EltTargetPolicy(Oid relid);
extern bool EltTableScope(Oid relid, bool *tracked, bool *was_in_scope);
extern bool EltPartitionOfGoverned(Oid relid);

/* govern.c */
extern bool EltTableInScope(Oid relid, bool *tracked);
extern List *EltSchemaTables(Oid nspoid, List *tables);
extern void EltMoveTableTarget(Oid old_relid, Oid new_relid);
extern void EltRemoveTableTarget(EltCatalogWrite *cw, Oid relid, int64 table_id,
								 const char *object, const char *cause);
extern void EltRemoveSchemaTarget(EltCatalogWrite *cw, const char *schema,
								  const char *cause);
extern void EltRenameSchemaTarget(EltCatalogWrite *cw, const char *oldname,
								  const char *newname);

#endif							/* ELT_GOVERN_H */
