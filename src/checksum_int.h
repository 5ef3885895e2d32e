/*
 * checksum_int.h — shared inside the checksum engine: checksums of Citus
 * tables (checksum_citus.c), called by checksum.c.
 */
#ifndef ELT_CHECKSUM_INT_H
#define ELT_CHECKSUM_INT_H

#include "postgres.h"

/* the format of a checksum: "v1:<rows>:<32 hex digits of the sum>" */
#define CHECKSUM_PREFIX "v1"

extern void EltChecksumCitus(Oid relid, char **cols, int ncols, uint64 *rows, uint64 *sum);
extern void EltChecksumRangesCitus(Oid relid, const char *key, char **cols, int ncols,
								   char **bounds, int nbounds,
								   uint64 *seg_rows, uint64 *seg_sum);

#endif							/* ELT_CHECKSUM_INT_H */
