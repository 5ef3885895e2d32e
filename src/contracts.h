/*
 * contracts.h — backward-compatibility contracts: classification of DDL
 * before it runs and policies (migration windows, approvers and consumers
 * are in migrations.h).  The engine's face
 * for other engines (the capture triggers, deploy.c, the entry point); what
 * its own files share is in contracts_int.h.
 */
#ifndef ELT_CONTRACTS_H
#define ELT_CONTRACTS_H

#include "postgres.h"

#include "nodes/nodes.h"
#include "nodes/parsenodes.h"
#include "tcop/cmdtag.h"

#include "migrations.h"
#include "util.h"

/* The one SQLSTATE of every change blocked by a contract. */
#define ERRCODE_ELT_CHANGE_BLOCKED MAKE_SQLSTATE('E','G','0','0','0')

extern int	elt_large_table_rows;

/* contracts_judge.c */
extern void EltContractsCheck(Node *parsetree, CommandTag tag);
extern void EltContractsCheckCascade(EltCatalogWrite *cw, Oid relid, const char *type,
									 const char *schema, const char *name,
									 const char *column);

/* contracts_classify.c */
extern bool EltEnumAddFindsValue(AlterEnumStmt *stmt);

/* contracts_record.c */
extern void EltContractsRecordDeferred(EltCatalogWrite *cw);

#endif							/* ELT_CONTRACTS_H */
