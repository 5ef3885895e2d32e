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

/*
 * The one SQLSTATE of every change blocked (or warned about) by a contract:
 * class 42, "syntax error or access rule violation" — a rule forbids the
 * change — so that client libraries raise their class-42 error (psycopg2
 * ProgrammingError); subclass ZEG is implementation-defined (Z) and ours
 * (EG).  Until 0.8.0 it was EG000, a class no client knows.
 */
#define ERRCODE_ELT_CHANGE_BLOCKED MAKE_SQLSTATE('4','2','Z','E','G')

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
