/*
 * contracts_int.h — what the parts of the contracts engine share: the rule
 * table, the candidate findings a statement is classified into, and the
 * functions one part calls in another.  Not for other engines: their face
 * of the engine is contracts.h.
 *
 * The parts, in the order a statement goes through them (each calls only
 * the ones after it; none calls back):
 *   contracts_script.c    elt.check_ddl(): a dry run of a script
 *   contracts_judge.c     the live check at ddl_command_start and sql_drop:
 *                         judge candidates against policies and dependents,
 *                         then block, warn or approve
 *   contracts_classify.c  a statement's parse tree into candidates
 *   contracts_record.c    elt.schema_changes, deferred records, audit
 *   contracts_rules.c     the rule table (elt.rules()), names in the live
 *                         catalog or a script's view of it, type widening
 */
#ifndef ELT_CONTRACTS_INT_H
#define ELT_CONTRACTS_INT_H

#include "postgres.h"

#include "catalog/pg_attribute.h"
#include "nodes/parsenodes.h"
#include "nodes/pg_list.h"
#include "storage/lockdefs.h"
#include "utils/palloc.h"

#include "contracts.h"
#include "util.h"

/* ------------------------------------------------------------------------
 * Rules
 * ------------------------------------------------------------------------
 */
typedef enum EltRuleId
{
	R_MISSING,
	R_DROP_TABLE,
	R_DROP_VIEW,
	R_DROP_SCHEMA,
	R_DROP_COLUMN,
	R_RENAME_TABLE,
	R_RENAME_COLUMN,
	R_TYPE_NARROWING,
	R_DROP_NOT_NULL,
	R_SET_NOT_NULL,
	R_ADD_NOT_NULL_COLUMN,
	R_DROP_DEFAULT,
	R_ADD_CHECK,
	R_ADD_UNIQUE,
	R_ADD_FOREIGN_KEY,
	R_ENUM_ADD_VALUE,
	R_ENUM_RENAME_VALUE,
	R_CONSUMER_COLUMN,
	R_TRUNCATE,
	R_RENAME_SCHEMA,
	R_DETACH_PARTITION,
	R_ROW_SECURITY,
	R_DROP_UNIQUE,
	R_TYPE_REWRITE,
	R_VOLATILE_DEFAULT,
	R_NOT_NULL_SCAN,
	R_VALIDATION_SCAN,
	R_INDEX_BUILD,
	R_CREATE_INDEX,
	R_DROP_INDEX,
	R_NO_LOCK_TIMEOUT,
	R_TABLE_REWRITE,
	R_TRANSACTION_BLOCK,
	R_HELD_LOCK_SCAN,
	R_REINDEX,
	R_REFRESH_MATVIEW,
	R_DOMAIN_VALIDATE,
	R_INDEX_REBUILD,
	R_COUNT
} EltRuleId;

typedef struct EltRule
{
	const char *code;
	const char *class;			/* breaking, lock_hazard, advice, error */
	const char *title;
	const char *suggestion;
} EltRule;

#define RULE_IS_BREAKING(r) (strcmp(EltContractRules[r].class, "breaking") == 0)
#define RULE_IS_HAZARD(r) (strcmp(EltContractRules[r].class, "lock_hazard") == 0)
#define RULE_IS_ADVICE(r) (strcmp(EltContractRules[r].class, "advice") == 0)

/* Candidate flags */
#define CAND_NEEDS_SIZE		0x01	/* keep only on a large table */
#define CAND_NOT_NULL_PROOF	0x02	/* drop if a valid CHECK proves NOT NULL */
#define CAND_WRITERS		0x04	/* breaks writers: dependents are functions */
#define CAND_PARTITION		0x08	/* drops a partition: judged only under its
									 * own target if its parent is governed */

/*
 * One candidate finding, or (rule < 0) a touch: an object the statement
 * changes in a way no rule flags (kept to record a 'safe' change, and for
 * EG117 when it is a column a registered consumer uses).
 */
typedef struct EltCandidate
{
	int			rule;			/* EltRuleId, or -1 for a touch */
	Oid			relid;			/* relation concerned */
	Oid			nspoid;			/* schema concerned */
	Oid			typid;			/* enum type concerned */
	AttrNumber	attnum;			/* column of relid, or 0 */
	char	   *colname;		/* its name */
	char	   *object;
	char	   *reason;
	int			flags;
	LOCKMODE	lockmode;		/* for CAND_NEEDS_SIZE */
	bool		recurse;		/* also acts on inheritors (and partitions) */
	char	   *newname;		/* a renamed column's new name */
	Oid			privrel;		/* relation whose owner may run it, if not relid */
	bool		schema_owner_may;	/* DROP: the schema's owner may too */
	/* set by judge */
	const char *policy;
	List	   *dependents;		/* of char * */
} EltCandidate;

/* What earlier statements of a check_ddl script did. */
typedef struct EltScript
{
	List	   *created;		/* char *: qualified names of new relations */
	List	   *created_types;	/* char *: qualified names of new types */
	List	   *created_schemas;	/* char * */
	List	   *alias_names;	/* char *: new qualified name of a live rel */
	List	   *alias_oids;		/* its oid */
	List	   *gone;			/* oids dropped, renamed or moved away */
	List	   *col_keys;		/* char *: "<oid>.<name>" */
	List	   *col_attnums;	/* int: live attnum, 0 new, -1 gone */
	bool		lock_timeout;	/* a lock_timeout is set */
} EltScript;

typedef enum
{
	FOUND_LIVE,
	FOUND_NEW,					/* created by the script: nothing to judge */
	FOUND_MISSING
} EltFound;

typedef struct EltClassified
{
	List	   *cands;			/* EltCandidate * */
	EltScript  *script;			/* NULL for a live statement */
	MemoryContext cxt;			/* where candidates live */
	Oid			actor;			/* the role running the statement */
	bool		recurse;		/* the statement also acts on inheritors */
} EltClassified;

/* contracts_rules.c */
extern const EltRule EltContractRules[R_COUNT];
extern List *EltScriptSchemas;
extern char *EltRelDisplay(Oid relid);
extern char *EltColDisplay(Oid relid, const char *col);
extern char *EltRangeVarQualified(const RangeVar *rv);
extern bool EltStringMember(List *list, const char *s);
extern EltFound EltFindRelation(EltClassified *c, const RangeVar *rv, Oid *relid);
extern char *EltColKey(Oid relid, const char *col);
extern EltFound EltFindColumn(EltClassified *c, Oid relid, const char *col,
							  FormData_pg_attribute *att);
extern bool EltTypeIsWidening(Oid otyp, int32 omod, Oid ntyp, int32 nmod);
extern bool EltTypeChangeRewrites(Oid otyp, int32 omod, Oid ntyp, int32 nmod, bool using);
extern bool EltRawVolatileWalker(Node *node, void *context);
extern bool EltIsSerialType(TypeName *tn);
extern Datum EltTextArray(List *list);

/* contracts_classify.c */
extern void EltClassify(EltClassified *c, Node *stmt);

/* contracts_judge.c */
extern void EltJudge(EltClassified *c, bool lock_timeout_set);
extern void EltJudgeCacheBegin(void);
extern void EltJudgeCacheEnd(void);

/* contracts_record.c */
extern void EltContractsWriteRecords(EltCatalogWrite *cw, List *findings, List *decisions,
									 const char *tagname, const char *statement,
									 int64 migration);
extern void EltContractsKeepDeferred(List *findings, List *decisions, const char *tagname,
									 const char *statement, int64 migration);
extern void EltContractsForgetDeferred(void);
extern void EltContractsFollowRegistrations(EltCatalogWrite *cw, List *findings);

#endif							/* ELT_CONTRACTS_INT_H */
