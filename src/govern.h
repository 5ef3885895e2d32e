/*
 * govern.h — governed targets (elt.governed_targets).
 */
#ifndef ELT_GOVERN_H
#define ELT_GOVERN_H

#include "postgres.h"

#include "util.h"

extern void EltRemoveTableTarget(EltCatalogWrite *cw, Oid relid, int64 table_id,
								 const char *object, const char *cause);
extern void EltRemoveSchemaTarget(EltCatalogWrite *cw, const char *schema,
								  const char *cause);

#endif							/* ELT_GOVERN_H */
