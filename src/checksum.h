/*
 * checksum.h — table checksums (checksum.c).
 */
#ifndef ELT_CHECKSUM_H
#define ELT_CHECKSUM_H

#include "postgres.h"
#include "nodes/pg_list.h"
#include "storage/itemptr.h"

/* "v1:<rows>:<hex>" over the named columns of relid (all if NIL); checks privileges. */
extern char *EltTableChecksum(Oid relid, List *colnames);
extern char *EltTableChecksumHere(Oid relid, List *colnames, bool written);
extern int64 EltChecksumRows(const char *checksum);
/* The same over some rows: tids[i] of relation rels[i] (relid or a leaf partition). */
extern char *EltRowsChecksum(Oid relid, int64 n, const Oid *rels, const ItemPointerData *tids);

#endif							/* ELT_CHECKSUM_H */
