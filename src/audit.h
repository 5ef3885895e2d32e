/*
 * audit.h — the hash-chained audit log.
 */
#ifndef ELT_AUDIT_H
#define ELT_AUDIT_H

#include "postgres.h"
#include "access/htup.h"
#include "access/tupdesc.h"

#include "util.h"

/* The prev_hash of the first row of the chain. */
#define ELT_GENESIS_HASH "0000000000000000000000000000000000000000000000000000000000000000"

/* Rows whose canonical hash the audit log holds. */
typedef enum EltHashedRow
{
	ELT_HASHED_AUDIT,			/* an audit row: its row_hash */
	ELT_HASHED_VERSION,			/* a schema version: version_hash */
	ELT_HASHED_RUN				/* a transform run: run_hash */
} EltHashedRow;

extern void EltAuditLock(void);
extern void EltAuditInit(void);
extern void EltAuditRecord(Oid actor, const char *action, const char *object,
						   const char *details_json, const char *reason);
extern void EltAuditTagVersion(int64 table_id, int32 version);
extern void EltAuditTakeBackVersions(int64 table_id, int32 version);
extern void EltAuditAllowTakeBack(bool on);
extern void EltVersionRowHash(HeapTuple tuple, TupleDesc desc, const char *prefix,
							  char *out);
extern void EltRunRowHash(HeapTuple tuple, TupleDesc desc, const char *prefix,
						  char *out);
extern int *EltHashedRowAttnos(EltHashedRow kind, TupleDesc desc, const char *prefix,
							   int *n);
extern const char *EltAuditReason(const char *given);

#endif							/* ELT_AUDIT_H */
