/*
 * roles.c — the role model of elt_governance.
 *
 * The extension script creates three group roles, NOLOGIN, shared by every
 * database of the cluster (roles are cluster-wide; DROP EXTENSION leaves
 * them):
 *   elt_reader    sees every record the catalog keeps, in full: every run
 *                 and its parameters and errors, every audit row's details,
 *                 backfill key bounds and errors, check arguments and
 *                 failures, every snapshot and manifest.  Never table rows:
 *                 lineage, check samples and snapshot contents stay with the
 *                 roles that may read the tables.
 *   elt_operator  runs the machinery for every role: controls every backfill
 *                 (the work still runs as the backfill's owner), runs every
 *                 check (as its owner), purges old backfills, lineage and
 *                 snapshots of every role.
 *   elt_admin     administers governance: adds and removes approvers,
 *                 governs and ungoverns any schema or table, drops any check
 *                 or consumer registration; a member of both roles above.
 * Superusers pass every test here.  A role that has been dropped by hand
 * counts as absent: nobody is its member.
 *
 * The SQL functions elt._sees_all(), elt._sees_role() and elt._sees_role_name()
 * are what the catalog views use to decide, per row, what the querying role
 * may see (the current user, as in any view: views check tables as their
 * owner but call functions as the querying role).
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"

#include "pg_compat.h"
#include "roles.h"

/* Whether role has the privileges of the named group role (absent: no). */
static bool
has_group(Oid role, const char *group)
{
	Oid			groupid;

	if (superuser_arg(role))
		return true;
	groupid = get_role_oid(group, true);
	return OidIsValid(groupid) && has_privs_of_role(role, groupid);
}

/* elt_reader: may see every record of the catalog. */
bool
EltRoleIsReader(Oid role)
{
	return has_group(role, ELT_ROLE_READER);
}

/* elt_operator: may control the machinery of every role. */
bool
EltRoleIsOperator(Oid role)
{
	return has_group(role, ELT_ROLE_OPERATOR);
}

/* elt_admin: may administer governance for every role. */
bool
EltRoleIsAdmin(Oid role)
{
	return has_group(role, ELT_ROLE_ADMIN);
}

/*
 * Whether role may see what the catalog records of other's work: other's
 * own members (as pg_has_role(other, 'USAGE') says) and elt_reader.
 */
bool
EltRoleSeesRole(Oid role, Oid other)
{
	if (OidIsValid(other) && has_privs_of_role(role, other))
		return true;
	return EltRoleIsReader(role);
}

PG_FUNCTION_INFO_V1(elt_sees_all);

/* elt._sees_all() RETURNS boolean: the current role is elt_reader (or superuser). */
Datum
elt_sees_all(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(EltRoleIsReader(GetUserId()));
}

PG_FUNCTION_INFO_V1(elt_sees_role);

/*
 * elt._sees_role(role oid) RETURNS boolean: the current role has the
 * privileges of role, or is elt_reader.  NULL or a dropped role: only
 * elt_reader.
 */
Datum
elt_sees_role(PG_FUNCTION_ARGS)
{
	Oid			other = PG_ARGISNULL(0) ? InvalidOid : PG_GETARG_OID(0);

	PG_RETURN_BOOL(EltRoleSeesRole(GetUserId(), other));
}

PG_FUNCTION_INFO_V1(elt_sees_role_name);

/* elt._sees_role_name(role name) RETURNS boolean: the same, for a role name. */
Datum
elt_sees_role_name(PG_FUNCTION_ARGS)
{
	Oid			other = InvalidOid;

	if (!PG_ARGISNULL(0))
		other = get_role_oid(NameStr(*PG_GETARG_NAME(0)), true);
	PG_RETURN_BOOL(EltRoleSeesRole(GetUserId(), other));
}

/*
 * Whether role may have code run as owner on its behalf (a transform's run
 * or new version, a backfill's chunks, a check, a revert's writes): it has
 * owner's privileges and may become owner.  On PostgreSQL 16 and later a
 * membership granted WITH SET FALSE gives the privileges but not the right
 * to act as the role (to SET ROLE, to make objects it owns); running code
 * as owner would give that right back.  Superusers may.
 */
bool
EltRoleMayActAs(Oid role, Oid owner)
{
	if (superuser_arg(role))
		return true;
	return OidIsValid(owner) && has_privs_of_role(role, owner) && EltCanSetRole(role, owner);
}
