/*
 * lineage.h — row and column lineage of transform queries: the analysis
 * of a query (lineage.c), the capture of a run's row lineage
 * (lineage_capture.c), lookups in the stored lineage (lineage_store.c) and
 * keys typed by a user (lineage_rows.c).  Canonical key text is in
 * lineage_keys.h; the encoding of a chunk, private to capture and store,
 * in lineage_chunk.h.
 */
#ifndef ELT_LINEAGE_H
#define ELT_LINEAGE_H

#include "postgres.h"
#include "nodes/parsenodes.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/rel.h"
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

/* lineage.c */
extern Query *EltAnalyzeSelect(const char *sql);
extern Query *EltAnalyzeSelectRemapped(const char *sql, List *remap);
extern List *EltRawRelationRefs(const char *sql);
extern EltLineageInfo *EltLineageAnalyze(const char *sql, bool rewrite);
extern List *EltPrimaryKeyColumns(Relation rel);

/* lineage_functions.c: what a function may read that row lineage cannot see */
typedef enum EltHiddenRead
{
	ELT_READS_NOTHING_HIDDEN,
	ELT_RUNS_QUERY,				/* query_to_xml, ts_stat: a query given as text */
	ELT_READS_REMOTE,			/* dblink */
	ELT_READS_SERVER_DATA,		/* pg_read_file, lo_get */
	ELT_MAY_READ_TABLES			/* a body that may select from tables */
} EltHiddenRead;
extern EltHiddenRead EltFunctionHiddenRead(Oid funcid);
extern const char *EltHiddenReadWhat(EltHiddenRead r);
extern const char *EltHiddenReadHint(EltHiddenRead r);

extern bool EltIntegerKeyType(Oid typid);

/* lineage_rows.c */
extern char *EltNormalizeKey(Oid relid, const char *key, bool *is_int, int64 *ival);

/* lineage_capture.c */
extern void EltCaptureBegin(Oid target, int key_cols, List *slots, int64 token,
							MemoryContext cxt);
extern void EltCaptureRow(const Datum *values, const bool *nulls, const Oid *types, int natts);
extern int64 EltCaptureEnd(void);
extern void EltCaptureDrop(void);
extern void EltCaptureOpenPending(bool open);

/* lineage_store.c */

/* What a lookup found for one of the keys it was given. */
typedef struct EltLineageHit
{
	int			index;			/* which key */
	int64		run_id;
	Oid			rel;			/* the relation of the keys below */
	bool		is_int;
	int			n;
	int64	   *ints;
	char	  **texts;
} EltLineageHit;

extern List *EltLineageLookup(Oid rel, bool upstream, bool want_keys, int n,
							  const bool *is_int, const int64 *ivals, char *const *tvals);

#endif							/* ELT_LINEAGE_H */
