/*
 * contracts_swap.h — a swap of two relations' names in one transaction,
 * judged as the replacement of one relation (contracts_swap.c).
 */
#ifndef ELT_CONTRACTS_SWAP_H
#define ELT_CONTRACTS_SWAP_H

#include "postgres.h"

#include "nodes/pg_list.h"

extern Oid	EltSwapTmpFor(Oid relid);
extern List *EltSwapCaptureViews(Oid relid, bool *ok);
extern void EltSwapRenameOut(Oid relid, Oid tmp_relid, const char *reason,
							 const char *policy, List *views);
extern void EltSwapFollowViews(void);
extern void EltSwapRenameIn(Oid relid, const char *newname, const char *tagname);
extern Oid	EltSwapHistoryFrom(Oid relid);
extern bool EltSwapRetired(Oid relid);

#endif							/* ELT_CONTRACTS_SWAP_H */
