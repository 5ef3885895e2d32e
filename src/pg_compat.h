/*
 * pg_compat.h — what differs between the PostgreSQL versions elt_governance
 * builds against (15, 16, 17 and 18), in one place.
 *
 * The engines are written against PostgreSQL 15's names.  Each macro or
 * inline function here keeps one of them working on the later versions, so
 * that the call sites stay as they are and no engine tests PG_VERSION_NUM
 * itself (the way pgvector and pg_cron keep their version tests together).
 * Where a later version changes behaviour rather than a name, the helper
 * says so (18's RTE_GROUP Vars, EltGroupedExpr); 17's pg_database.datlocale
 * is handled in the install script (elt._env_fingerprint).
 *
 * Included from util.h, which every engine includes, and from the few
 * headers and files that do not see util.h.  Owns no state and no locks.
 */
#ifndef ELT_PG_COMPAT_H
#define ELT_PG_COMPAT_H

#include "postgres.h"

#include <inttypes.h>

#include "access/htup_details.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parsetree.h"
#include "pgstat.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/backend_status.h"
#include "utils/guc.h"
#include "utils/regproc.h"
#include "utils/relcache.h"
#include "utils/syscache.h"

#if PG_VERSION_NUM < 150000 || PG_VERSION_NUM >= 190000
#error "elt_governance builds against PostgreSQL 15, 16, 17 and 18"
#endif

/*
 * 16: the ownership and privilege checks of one catalog each became
 * object_ownercheck / object_aclcheck of (catalog, oid).
 */
#if PG_VERSION_NUM >= 160000
#define pg_class_ownercheck(relid, roleid) \
	object_ownercheck(RelationRelationId, (relid), (roleid))
#define pg_type_ownercheck(typid, roleid) \
	object_ownercheck(TypeRelationId, (typid), (roleid))
#define pg_namespace_ownercheck(nspid, roleid) \
	object_ownercheck(NamespaceRelationId, (nspid), (roleid))
#define pg_namespace_aclcheck(nspid, roleid, mode) \
	object_aclcheck(NamespaceRelationId, (nspid), (roleid), (mode))
#define pg_database_ownercheck(dbid, roleid) \
	object_ownercheck(DatabaseRelationId, (dbid), (roleid))
#endif

/*
 * Whether a role may run the maintenance commands on a relation (VACUUM,
 * CLUSTER, REFRESH MATERIALIZED VIEW, REINDEX TABLE/INDEX): 17 grants it
 * with the MAINTAIN privilege (held by the owner, grantable, and by
 * pg_maintain); before 17 only the owner may.
 */
#if PG_VERSION_NUM >= 170000
#define EltMaintainCheck(relid, roleid) \
	(pg_class_aclcheck((relid), (roleid), ACL_MAINTAIN) == ACLCHECK_OK)
#else
#define EltMaintainCheck(relid, roleid) pg_class_ownercheck((relid), (roleid))
#endif

/*
 * 16: stringToQualifiedNameList takes a soft-error context; NULL throws, as
 * 15 always did.  (A macro does not expand inside its own expansion.)
 */
#if PG_VERSION_NUM >= 160000
#define stringToQualifiedNameList(string) stringToQualifiedNameList((string), NULL)
#endif

/*
 * 16: a membership may grant a role's privileges without the right to
 * become it (GRANT ... WITH SET FALSE); code that acts as the role asks
 * for the right to SET it.  Before 16 every member could.
 */
#if PG_VERSION_NUM >= 160000
#define EltCanSetRole(member, role) member_can_set_role((member), (role))
#else
#define EltCanSetRole(member, role) is_member_of_role((member), (role))
#endif

/*
 * 18: RelationGetPrimaryKeyIndex says whether a deferrable primary key
 * counts; before 18 it always did.
 */
#if PG_VERSION_NUM >= 180000
#define RelationGetPrimaryKeyIndex(rel) RelationGetPrimaryKeyIndex((rel), true)
#endif

/* 18: INT64_MODIFIER is gone; int64 is int64_t, so C99's <inttypes.h> fits */
#ifndef INT64_MODIFIER
#define ELT_INT64_HEX "%016" PRIx64
#else
#define ELT_INT64_HEX "%016" INT64_MODIFIER "x"
#endif

/*
 * 18: pg_attribute_noreturn() (after a declaration) became pg_noreturn
 * (before it, C11's _Noreturn).  GCC and Clang accept the attribute first.
 */
#ifndef pg_noreturn
#define pg_noreturn pg_attribute_noreturn()
#endif

/* 17: the local transaction id moved into MyProc->vxid */
#if PG_VERSION_NUM >= 170000
#define EltMyLocalTransactionId() (MyProc->vxid.lxid)
#else
#define EltMyLocalTransactionId() (MyProc->lxid)
#endif

/* 17: LockHeldByMe() takes orstronger; the one-mode test is the 15 one */
#if PG_VERSION_NUM >= 170000
#define EltLockHeldByMe(tag, mode) LockHeldByMe((tag), (mode), false)
#else
#define EltLockHeldByMe(tag, mode) LockHeldByMe((tag), (mode))
#endif

/* 17: REINDEX fires event triggers (ddl_command_start judges it there) */
#if PG_VERSION_NUM >= 170000
#define ELT_REINDEX_FIRES_EVENT_TRIGGERS true
#else
#define ELT_REINDEX_FIRES_EVENT_TRIGGERS false
#endif

/* 17: backend ids became proc numbers (storage/backendid.h is gone) */
#if PG_VERSION_NUM >= 170000
#include "storage/procnumber.h"
#define BackendIdForTempRelations() ProcNumberForTempRelations()
#else
#include "storage/backendid.h"
#endif

/* 18: PGPROC.isBackgroundWorker became isRegularBackend */
#if PG_VERSION_NUM >= 180000
#define EltProcIsBackgroundWorker(proc) (!(proc)->isRegularBackend)
#else
#define EltProcIsBackgroundWorker(proc) ((proc)->isBackgroundWorker)
#endif

/*
 * 18: virtual generated columns, computed when read.  Adding one rewrites
 * nothing (a stored one rewrites the table); the shape of a table says
 * which kind a generated column is.
 */
#if PG_VERSION_NUM >= 180000
#define EltGeneratedIsVirtual(con) ((con)->generated_kind == ATTRIBUTE_GENERATED_VIRTUAL)
#define EltAttIsVirtual(att) ((att)->attgenerated == ATTRIBUTE_GENERATED_VIRTUAL)
#else
#define EltGeneratedIsVirtual(con) false
#define EltAttIsVirtual(att) false
#endif

/*
 * 17: ALTER TABLE ... ALTER COLUMN ... SET EXPRESSION AS (...) recomputes a
 * generated column.  Before 17 no subcommand has this number.
 */
#if PG_VERSION_NUM >= 170000
#define ELT_AT_SET_EXPRESSION ((int) AT_SetExpression)
#else
#define ELT_AT_SET_EXPRESSION (-1)
#endif

/*
 * 18: ALTER TABLE ... ALTER CONSTRAINT c [NOT] ENFORCED (foreign keys).
 * The constraint's name if the subcommand makes it ENFORCED, else NULL;
 * before 18 ALTER CONSTRAINT changes deferrability only.
 */
static inline const char *
EltAlterConstraintEnforces(AlterTableCmd *cmd)
{
#if PG_VERSION_NUM >= 180000
	ATAlterConstraint *ac = (ATAlterConstraint *) cmd->def;

	if (cmd->subtype == AT_AlterConstraint && ac != NULL && IsA(ac, ATAlterConstraint) &&
		ac->alterEnforceability && ac->is_enforced)
		return ac->conname;
#endif
	return NULL;
}

/*
 * 18: pg_constraint holds NOT NULL constraints (contype 'n'); their column.
 * Before 18 no constraint has that type ('\0' never matches).
 */
#if PG_VERSION_NUM >= 180000
#define EltConstraintNotNull CONSTRAINT_NOTNULL
#define EltNotNullColumn(contup) extractNotNullColumn(contup)
#else
#define EltConstraintNotNull '\0'
#define EltNotNullColumn(contup) InvalidAttrNumber
#endif

/* 18: pg_constraint.conenforced (NOT ENFORCED); before 18 all are enforced */
#if PG_VERSION_NUM >= 180000
#define EltConstraintEnforced(contup) (((Form_pg_constraint) GETSTRUCT(contup))->conenforced)
#else
#define EltConstraintEnforced(contup) true
#endif

/*
 * 18: NOT NULL is a constraint in pg_constraint (contype 'n') and can be
 * NOT VALID, while pg_attribute.attnotnull is set either way.  What holds
 * for a column: 'v' a validated NOT NULL, 'n' one NOT VALID (new writes
 * are checked, old rows are not), '\0' none.  Before 18, attnotnull.
 */
static inline char
EltAttNotNullState(Oid relid, AttrNumber attnum, bool attnotnull)
{
	char		state = attnotnull ? 'v' : '\0';
#if PG_VERSION_NUM >= 180000
	HeapTuple	tup;

	if (!attnotnull)
		return '\0';
	tup = findNotNullConstraintAttnum(relid, attnum);
	if (HeapTupleIsValid(tup))
	{
		if (!((Form_pg_constraint) GETSTRUCT(tup))->convalidated)
			state = 'n';
		heap_freetuple(tup);
	}
#endif
	return state;
}

/*
 * What a grouped column stands for: from PostgreSQL 18 on, the parser makes
 * a column of GROUP BY a Var of the query's RTE_GROUP entry (rtable), which
 * column lineage follows to what was grouped by, as it reads on 15 to 17.
 * e itself when it is not such a Var (of level levelsup).
 */
static inline Node *
EltGroupedExpr(List *rtable, Node *e, Index levelsup)
{
#if PG_VERSION_NUM >= 180000
	Var		   *v = (Var *) e;

	if (e != NULL && IsA(e, Var) && v->varlevelsup == levelsup &&
		v->varno >= 1 && v->varno <= list_length(rtable))
	{
		RangeTblEntry *rte = rt_fetch(v->varno, rtable);

		if (rte->rtekind == RTE_GROUP && v->varattno > 0 &&
			v->varattno <= list_length(rte->groupexprs))
			return list_nth(rte->groupexprs, v->varattno - 1);
	}
#endif
	return e;
}

/*
 * The i-th (1-based) entry of this transaction's snapshot of the backend
 * status array, or NULL.  16 made pgstat_fetch_stat_beentry take a backend
 * id instead, and added pgstat_get_local_beentry_by_index.
 */
static inline PgBackendStatus *
EltBackendStatusByIndex(int i)
{
#if PG_VERSION_NUM >= 160000
	LocalPgBackendStatus *local = pgstat_get_local_beentry_by_index(i);

	return local != NULL ? &local->backendStatus : NULL;
#else
	return pgstat_fetch_stat_beentry(i);
#endif
}

/*
 * Tuples this transaction read from a table so far (sequential and index
 * fetches).  16 renamed PgStat_TableStatus.t_counts.t_tuples_* to
 * counts.tuples_*.
 */
static inline int64
EltTableStatusTuplesRead(PgStat_TableStatus *st)
{
#if PG_VERSION_NUM >= 160000
	return st->counts.tuples_returned + st->counts.tuples_fetched;
#else
	return st->t_counts.t_tuples_returned + st->t_counts.t_tuples_fetched;
#endif
}

/*
 * A column's statistics target, -1 for the default.  17 moved
 * attstattarget out of the fixed part of pg_attribute (NULL for the
 * default), so it is read from the syscache there.
 */
static inline int
EltAttStatTarget(Form_pg_attribute att)
{
#if PG_VERSION_NUM >= 170000
	HeapTuple	tup;
	Datum		d;
	bool		isnull;
	int			target = -1;

	tup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(att->attrelid),
						  Int16GetDatum(att->attnum));
	if (!HeapTupleIsValid(tup))
		return -1;
	d = SysCacheGetAttr(ATTNUM, tup, Anum_pg_attribute_attstattarget, &isnull);
	if (!isnull)
		target = DatumGetInt16(d);
	ReleaseSysCache(tup);
	return target;
#else
	return att->attstattarget;
#endif
}

#endif							/* ELT_PG_COMPAT_H */
