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
 *   contracts_script_state.c  what a script remembers (transaction blocks,
 *                         locks held, constraints, added columns) and the
 *                         findings that follow; EG210, live too
 *   contracts_live.c      the columns a live transaction added
 *   contracts_classify.c  a statement's parse tree into candidates
 *   contracts_newer.c     the same for ALTER TABLE forms of 17 and 18 (SET
 *                         EXPRESSION, NOT NULL constraints, ENFORCED)
 *   contracts_maintain.c  the same for rebuild commands (REINDEX, VACUUM,
 *                         CLUSTER, REFRESH MATERIALIZED VIEW), the locks a
 *                         statement takes (EG208), domain scans, index
 *                         rebuilds of a type change
 *   contracts_keys.c      keys of unique indexes, compared
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
	R_SET_EXPRESSION,
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
#define CAND_LOCK			0x10	/* EG208: the statement takes lockmode on
									 * relid (kept when no lock_timeout) */
#define CAND_MAINTAIN		0x20	/* a maintenance command: who may run it
									 * follows PostgreSQL's rule for it
									 * (MAINTAIN on 17+, else the owner) */
#define CAND_DB_OWNER_MAY	0x40	/* with CAND_MAINTAIN: the database's owner
									 * may too (VACUUM, REINDEX DATABASE) */

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
	List	   *col_attnums;	/* int: live attnum, 0 new, -1 gone,
								 * ELT_COL_EARLIER */
	List	   *index_stmts;	/* IndexStmt *: CREATE UNIQUE INDEX with a name */
	bool		lock_timeout;	/* a lock_timeout is in force now */
	/* contracts_script_state.c: transactions and what else the script did */
	bool		in_block;		/* inside BEGIN ... COMMIT */
	bool		lt_session;		/* session lock_timeout set */
	int			lt_local;		/* SET LOCAL in the block: -1 none, 0 off, 1 on */
	List	   *held_rels;		/* Oid: relations the transaction has locked */
	List	   *held_modes;		/* int: the strongest LOCKMODE held on each */
	List	   *emptied;		/* Oid: truncated by it, not loaded since */
	List	   *cons;			/* EltScriptCon *: last entry per name wins */
	List	   *unnamed_con_rels;	/* Oid: got a constraint of a generated name */
	List	   *cols;			/* EltScriptCol *: columns the script added */
	List	   *created_funcs;	/* char *: names of functions and procedures */
	List	   *settings_changed;	/* char *: EltSettingKey of a table
									 * setting the script changed */
	bool		created_extension;	/* CREATE EXTENSION ran: its functions
									 * are unknown */
	List	   *nn_keys;		/* char *: "+<oid>.<name>" SET NOT NULL, "-..."
								 * DROP NOT NULL by the script; last wins */
	struct EltScript *saved;	/* the state at BEGIN, for ROLLBACK */
	MemoryContext cxt;			/* where this state lives, for the whole
								 * check; a statement's candidates live in
								 * c->cxt, reset after the statement */
	List	   *savepoints;		/* EltScriptSavepoint *, innermost last */
} EltScript;

/*
 * col_attnums: a column an earlier transaction of the script added (its
 * EltScriptCol in cols says its type): judged as a live column, as the
 * live trigger judges it in a later transaction; as an attnum, no column
 * of the catalog (only whole-row dependents).
 */
#define ELT_COL_EARLIER (-100)

/* A SAVEPOINT of the script: its name and the state it saved. */
typedef struct EltScriptSavepoint
{
	char	   *name;
	EltScript  *state;
} EltScriptSavepoint;

/* A constraint the script added, validated, renamed or dropped. */
typedef struct EltScriptCon
{
	Oid			relid;
	char	   *name;
	bool		gone;			/* dropped or renamed away */
	bool		valid;
	char	   *notnull_col;	/* CHECK (col IS NOT NULL): col */
} EltScriptCon;

/* A column the script added to a live table, as it now is. */
typedef struct EltScriptCol
{
	Oid			relid;
	char	   *name;
	Oid			typid;			/* InvalidOid: a type the script creates */
	int32		typmod;
	bool		not_null;
	bool		has_default;
} EltScriptCol;

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
	List	   *locks;			/* EltLock *: every lock EltAddLock was told of */
} EltClassified;

/* A lock a statement takes (EltAddLock), held or not before it. */
typedef struct EltLock
{
	Oid			relid;
	LOCKMODE	mode;
} EltLock;

/* contracts_rules.c */
extern EltCandidate *EltAddCandidate(EltClassified *c, int rule, Oid relid, AttrNumber attnum,
									 const char *colname, char *object, char *reason,
									 int flags);
extern void EltAddMissing(EltClassified *c, char *object, const char *what);
extern const EltRule EltContractRules[R_COUNT];
extern List *EltScriptSchemas;
extern char *EltRelDisplay(Oid relid);
extern char *EltColDisplay(Oid relid, const char *col);
extern char *EltRangeVarQualified(const RangeVar *rv);
extern bool EltStringMember(List *list, const char *s);
extern bool EltSelectWritesColumn(const char *sql, const char *colname);
extern EltFound EltFindRelation(EltClassified *c, const RangeVar *rv, Oid *relid);
extern char *EltColKey(Oid relid, const char *col);
extern EltFound EltFindColumn(EltClassified *c, Oid relid, const char *col,
							  FormData_pg_attribute *att);
extern bool EltInheritorHasColumn(EltClassified *c, Oid relid, const char *col,
								  FormData_pg_attribute *att);
extern bool EltTypeIsWidening(Oid otyp, int32 omod, Oid ntyp, int32 nmod);
extern bool EltTypeChangeRewrites(Oid otyp, int32 omod, Oid ntyp, int32 nmod, bool using);
extern bool EltRawVolatileWalker(Node *node, void *context);
extern bool EltIsSerialType(TypeName *tn);
extern Datum EltTextArray(List *list);

/* contracts_classify.c */
extern void EltClassify(EltClassified *c, Node *stmt);


/* contracts_newer.c: ALTER TABLE forms of PostgreSQL 17 and 18 */
extern bool EltClassifyNewerAlter(EltClassified *c, Oid relid, AlterTableCmd *cmd);
extern void EltClassifyNotNullConstraint(EltClassified *c, Oid relid, Constraint *con);
extern void EltClassifyDropNotNullConstraint(EltClassified *c, Oid relid, const char *conname);

/* contracts_maintain.c */
extern void EltClassifyMaintain(EltClassified *c, Node *stmt);
extern void EltClassifyLockOnly(EltClassified *c, Node *stmt);
extern void EltAddLock(EltClassified *c, Oid relid, LOCKMODE mode);
extern bool EltLockHeld(EltClassified *c, Oid relid, LOCKMODE mode);
extern LOCKMODE EltStatementLock(EltClassified *c, Oid relid);
extern void EltAlterTableLocks(EltClassified *c, Oid relid, AlterTableStmt *stmt);
extern void EltAddDomainScans(EltClassified *c, Oid typid, int rule, const char *what);
extern char *EltIndexesRebuilt(Oid relid, AttrNumber attnum, Oid otyp, Oid ocoll,
							   Oid ntyp, Oid ncoll);
extern bool EltTableSettingIsNoop(Oid relid, AlterTableCmd *cmd);
extern double EltEstimatedRows(Oid relid, LOCKMODE lockmode, bool live);
extern char *EltSettingKey(Oid relid, AlterTableCmd *cmd);

/* contracts_keys.c */
extern bool EltUniqueIndexIsDuplicate(Oid relid, IndexStmt *stmt);
extern bool EltUniqueIndexHasTwin(Oid table, Oid idx, List *also_dropped);
extern bool EltKeySwapKeepsKey(EltClassified *c, Oid relid, const char *conname,
							   char contype, List *cmds);
/* contracts_script_state.c */
extern void EltScriptBegin(EltScript *s, bool single_transaction);
extern bool EltScriptTransaction(EltScript *s, Node *stmt);
extern void EltClassifyHeldLocks(EltClassified *c, Node *stmt);
extern void EltScriptClassify(EltClassified *c, Node *stmt);
extern List *EltScriptBlockFindings(EltClassified *c, Node *stmt);
extern void EltScriptRemember(EltClassified *c, Node *stmt);
extern void EltScriptEndStatement(EltScript *s);
extern void EltScriptLockTimeoutNow(EltScript *s);
extern bool EltScriptColumnNotNull(EltClassified *c, Oid relid, AttrNumber attnum,
								   const char *col);

/* contracts_live.c */
extern void EltLiveAddedColumns(EltClassified *c, Node *stmt);

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
extern bool EltAdviceRecordable(void);

#endif							/* ELT_CONTRACTS_INT_H */
