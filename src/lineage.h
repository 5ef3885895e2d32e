/*
 * lineage.h — row and column lineage of transform queries.
 */
#ifndef ELT_LINEAGE_H
#define ELT_LINEAGE_H

#include "postgres.h"
#include "nodes/parsenodes.h"
#include "tcop/dest.h"
#include "utils/tuplestore.h"

/* One key column that the rewritten query adds to its output. */
typedef struct EltLineageSlot
{
	Oid			relid;			/* the source relation whose keys it carries */
	bool		text;			/* text keys (else bigint) */
	bool		array;			/* an array of keys (else one key) */
} EltLineageSlot;

/* One column lineage edge. */
typedef struct EltColumnEdge
{
	char	   *target_column;	/* NULL for indirect edges */
	Oid			relid;
	char	   *relname;		/* qualified, quoted */
	char	   *column;
	const char *kind;
} EltColumnEdge;

/* What the lineage analysis of one transform query found. */
typedef struct EltLineageInfo
{
	Query	   *query;			/* the analyzed query, unmodified */
	bool		row_ok;			/* row lineage can be recorded */
	char	   *blocker;		/* else: the construct that prevents it */
	char	   *blocker_hint;
	List	   *sources;		/* OIDs of every relation read */
	List	   *slots;			/* EltLineageSlot *, in output order */
	char	   *rewritten;		/* the query with key columns, as SQL */
	List	   *columns;		/* EltColumnEdge * */
	List	   *nondeterministic;	/* names of time or random functions */
} EltLineageInfo;

#define ELT_SLOT_PREFIX "__elt_lk_"
#define ELT_KEY_PREFIX "__elt_key_"

extern Query *EltAnalyzeSelect(const char *sql);
extern EltLineageInfo *EltLineageAnalyze(const char *sql, bool rewrite);

/* lineage_rows.c */
extern DestReceiver *EltLineageReceiver(List *slots, bool target_text,
										int64 *rows_written, uint64 *rows_seen);
extern void EltLineageOpenPending(bool open);
extern void EltLineageDropPending(void);
extern char *EltLineageKeyText(Datum value, Oid typid);
extern char *EltNormalizeKey(Oid relid, const char *key, bool *is_int, int64 *ival);
extern List *EltPrimaryKeyColumns(Relation rel);
extern bool EltIntegerKeyType(Oid typid);

#endif							/* ELT_LINEAGE_H */
