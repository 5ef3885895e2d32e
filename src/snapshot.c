/*
 * snapshot.c — content-addressed, immutable copies of a relation's rows.
 *
 * elt.snapshot_create(rel) checksums rel (elt.table_checksum, with the
 * caller's privileges); a snapshot of the same role with the same shape
 * (column names and qualified types) and checksum is reused without
 * copying.  Reuse stays within a role: the checksum detects accidents, not
 * forgery, so equal checksums never grant one role another's rows.  Otherwise the rows are
 * copied into the schema elt_snapshots (made on first use, a plain schema
 * so that pg_dump keeps the copies; the table made as the extension's
 * owner, the rows read and written as the caller, restricted), the copy is
 * checksummed again (the source may have changed in between: the copy is
 * what is recorded, and if its content already has a snapshot the copy is
 * dropped and that one reused), and it is renamed after its content:
 * s_<24 hex digits of SHA-256(shape hash, checksum, role)>.  A statement
 * trigger refuses every change to it; the role that made it may read it
 * (SELECT on the copy; the schema is usable by PUBLIC, see ensure_schema).
 *
 * Locking: what must not happen at once is per role: two creations of the
 * same content by one role would both copy it and collide on the storage
 * name (which is derived from content and role), and a drop or purge must
 * come after every creation in flight that may reuse, or a run that may
 * reference, the snapshot it drops.  Both concern only the snapshots of
 * one role (reuse never crosses roles, and a run references the snapshots
 * its steps made as the transform's owner).  So creation is serialized per
 * creating role, and drop and purge take the lock of the role of each
 * snapshot they drop, by a transaction-level object lock whose class is
 * elt.snapshot_defs and whose object is the role (lock_snapshots): no SQL
 * command can take such a lock, and a role holding its own (an open
 * transaction after elt.snapshot_create) holds up only its own snapshots.
 * Nothing else a creation writes is shared between roles: the copy is a
 * new table, and the schema's privileges are set when it is made, not at
 * every creation (two transactions granting on one schema would wait for
 * each other, and the second fail).  The first creation in a database,
 * which makes the schema, still makes the others wait until it commits.
 * A transaction that creates snapshots as several roles (a pipeline whose
 * transforms have different owners, under 'full') can deadlock with one
 * that does so in the other order; PostgreSQL detects it and cancels one.
 * elt.snapshot_defs lists snapshots; elt.snapshots shows each role its own.
 *
 * Citus.  The snapshot of a hash-distributed table is a table distributed
 * on the same column and colocated with it (as many shards, placed alike),
 * so that Citus copies the rows shard to shard, on the nodes that hold
 * them; a reference table's is a reference table (citus.c).  Its shape
 * hash covers the distribution: a snapshot is reused only for a source
 * distributed the same way.  Its immutable trigger is made on every shard.
 *
 * Layering: a shared layer of the runs engine: manifest.c calls
 * EltSnapshotCreate (declared in manifest.h) for a run under 'full'; this
 * file calls only checksum, citus, audit, roles and util.
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "catalog/pg_namespace.h"
#include "utils/syscache.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"

#include "audit.h"
#include "checksum.h"
#include "citus.h"
#include "manifest.h"
#include "roles.h"
#include "util.h"

#define SNAPSHOT_SCHEMA "elt_snapshots"

/*
 * Serialize the creation, drop and purge of role's snapshots until the end
 * of the transaction (see the top of this file).  The lock is an object
 * lock whose class id is elt.snapshot_defs and whose object id is the role,
 * like the table history locks of versions_store.c: only the extension takes
 * such locks (an advisory key could be held by any role to stall every
 * snapshot), and one role's lock holds up no other role's snapshots.
 */
static void
lock_snapshots(Oid role)
{
	Oid			defs = EltCatalogRelid("snapshot_defs");

	if (!OidIsValid(defs))
		elog(ERROR, "elt.snapshot_defs is missing");
	LockDatabaseObject(defs, role, 0, ExclusiveLock);
}

/* lock_snapshots, without waiting: false when another transaction holds it. */
static bool
try_lock_snapshots(Oid role)
{
	Oid			defs = EltCatalogRelid("snapshot_defs");

	if (!OidIsValid(defs))
		elog(ERROR, "elt.snapshot_defs is missing");
	return ConditionalLockDatabaseObject(defs, role, 0, ExclusiveLock);
}

/* The shape of relid, as JSON: [{"name": ..., "type": ...}, ...] in column order. */
static char *
shape_json(Oid relid)
{
	Relation	rel = relation_open(relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	EltJson		buf;
	int			i;

	/* a JSON array of objects, one per column */
	EltJsonBeginList(&buf);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped)
			continue;
		EltJsonBeginObject(&buf, NULL);
		EltJsonString(&buf, "name", NameStr(att->attname));
		EltJsonString(&buf, "type", format_type_extended(att->atttypid, att->atttypmod,
														 FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY));
		EltJsonEndObject(&buf);
	}
	relation_close(rel, AccessShareLock);
	return EltJsonFinish(&buf);
}

/*
 * What a snapshot's shape hash is taken of: its shape, and for a Citus
 * table how it is distributed, so that a snapshot is reused only for a
 * source distributed the same way (a distributed table's snapshot is a
 * distributed table, a plain table's a plain one).  Plain tables keep the
 * hash of their shape alone.
 */
static char *
shape_key(Oid relid, const char *shape)
{
	EltJson		d;
	EltCitusTable t;

	if (!EltCitusTableInfo(relid, &t))
		return pstrdup(shape);
	EltJsonBegin(&d);
	EltCitusDistributionJson(&d, relid);
	return psprintf("%s %s", shape, EltJsonFinish(&d));
}

/* The role's snapshot with this shape and checksum, or 0; with its storage name. */
static int64
find_snapshot(Oid role, const char *shape_hash, const char *checksum, char **storage)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[3] = {OIDOID, TEXTOID, TEXTOID};
	Datum		args[3];
	bool		isnull;
	int64		id;

	EltPrepare(&plan,
			   "SELECT snapshot_id, storage::pg_catalog.text AS storage FROM elt.snapshot_defs"
			   " WHERE created_by = $1::pg_catalog.regrole AND shape_hash = $2 AND checksum = $3",
			   3, types);
	args[0] = ObjectIdGetDatum(role);
	args[1] = CStringGetTextDatum(shape_hash);
	args[2] = CStringGetTextDatum(checksum);
	/* the latest snapshot: another session may have committed one since ours began */
	EltExecLatest(plan, args, NULL, 1);
	if (SPI_processed == 0)
		return 0;
	id = EltSpiGetInt64(0, "snapshot_id", &isnull);
	*storage = EltSpiGetText(0, "storage");
	return id;
}

/* The storage table of a snapshot, or InvalidOid if it is not there. */
static Oid
storage_relid(const char *storage)
{
	Oid			nsp = get_namespace_oid(SNAPSHOT_SCHEMA, true);

	return OidIsValid(nsp) ? get_relname_relid(storage, nsp) : InvalidOid;
}

static bool
storage_exists(const char *storage)
{
	return OidIsValid(storage_relid(storage));
}

/* Remove a snapshot's entry (its storage is gone or being dropped). */
static void
forget_snapshot(int64 id)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[1] = {INT8OID};
	Datum		args[1];

	EltPrepare(&plan, "DELETE FROM elt.snapshot_defs WHERE snapshot_id = $1", 1, types);
	args[0] = Int64GetDatum(id);
	EltExec(plan, args, NULL, 0);
}

/*
 * Whether PUBLIC's privileges on the storage schema are USAGE and nothing
 * else: every role may name the copies (whose own privileges say who reads
 * them), none may create objects among them.
 */
static bool
schema_acl_ok(Oid nsp)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[1] = {OIDOID};
	Datum		args[1];
	bool		isnull;

	EltPrepare(&plan,
			   "SELECT coalesce(pg_catalog.array_agg(a.privilege_type::pg_catalog.text)"
			   "                 = ARRAY['USAGE'], false) AS ok"
			   " FROM pg_catalog.pg_namespace n,"
			   "      pg_catalog.aclexplode(coalesce(n.nspacl, pg_catalog.acldefault('n', n.nspowner))) a"
			   " WHERE n.oid = $1 AND a.grantee = 0",
			   1, types);
	args[0] = ObjectIdGetDatum(nsp);
	EltExecLatest(plan, args, NULL, 1);
	return EltSpiGetBool(0, "ok", &isnull);
}

/*
 * Make the storage schema, or check that the one there is the extension's.
 * Its privileges are written only when they are not what they should be
 * (when it is made, normally): a GRANT updates the schema's catalog row,
 * and creations by two roles must not wait for each other on it.
 */
static void
ensure_schema(void)
{
	Oid			nsp;
	Oid			owner;

	if (!OidIsValid(get_namespace_oid(SNAPSHOT_SCHEMA, true)))
	{
		EltSpiExec("CREATE SCHEMA " SNAPSHOT_SCHEMA);
		CommandCounterIncrement();
	}
	nsp = get_namespace_oid(SNAPSHOT_SCHEMA, false);
	owner = EltNamespaceOwner(nsp);
	if (owner != EltExtensionOwner())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("schema " SNAPSHOT_SCHEMA " belongs to role %s, not to the extension's owner",
						GetUserNameFromId(owner, false)),
				 errhint("Snapshots are kept only in a schema " SNAPSHOT_SCHEMA " that the extension made; rename or drop that schema.")));
	if (!schema_acl_ok(nsp))
	{
		EltSpiExec("REVOKE ALL ON SCHEMA " SNAPSHOT_SCHEMA " FROM PUBLIC");
		EltSpiExec("GRANT USAGE ON SCHEMA " SNAPSHOT_SCHEMA " TO PUBLIC");
		CommandCounterIncrement();
	}
}

/* Let role read a new copy (the copy is the creating transaction's alone). */
static void
grant_read(const char *storage, Oid role)
{
	const char *r = quote_identifier(GetUserNameFromId(role, false));

	EltSpiExec(psprintf("GRANT SELECT ON %s.%s TO %s", SNAPSHOT_SCHEMA, quote_identifier(storage), r));
}

/*
 * Copy the rows of relid into a new table tmp of elt_snapshots (inside a
 * catalog write).  The table is made, empty, as the extension's owner; the
 * rows are read and written as actor, the role making the snapshot, in a
 * security-restricted operation: the copy reads what that role may read,
 * as it would read it (never with the owner's rights, whatever the
 * relation has become since its checksum: a partition attached meanwhile,
 * a foreign table's user mapping).
 */
static void
copy_rows(Oid relid, const char *tmp, Oid actor)
{
	const char *src = psprintf("%s%s",
							   get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE ? "" : "ONLY ",
							   quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
														  get_rel_name(relid)));
	const char *dst = psprintf("%s.%s", SNAPSHOT_SCHEMA, quote_identifier(tmp));
	EltAsRole	ar;

	EltSpiExec(psprintf("CREATE TABLE %s AS SELECT * FROM %s WITH NO DATA", dst, src));
	CommandCounterIncrement();
	/* a distributed copy of a distributed table, colocated: Citus copies shard to shard */
	(void) EltCitusDistributeLike(storage_relid(tmp), relid, InvalidOid);
	EltSpiExec(psprintf("GRANT INSERT ON %s TO %s", dst, quote_identifier(GetUserNameFromId(actor, false))));
	CommandCounterIncrement();
	EltAsRoleBegin(&ar, actor, "pg_catalog", true);
	EltSpiExec(psprintf("INSERT INTO %s SELECT * FROM %s", dst, src));
	EltAsRoleEnd(&ar);
	EltSpiExec(psprintf("REVOKE INSERT ON %s FROM %s", dst, quote_identifier(GetUserNameFromId(actor, false))));
	CommandCounterIncrement();
}

static void
audit_snapshot(Oid actor, const char *action, int64 id, const char *source, const char *checksum,
			   int64 rows, const char *extra_key, bool extra)
{
	EltJson		d;

	EltJsonBegin(&d);
	EltJsonInt(&d, "snapshot_id", id);
	if (source)
		EltJsonString(&d, "source", source);
	if (checksum)
	{
		EltJsonString(&d, "checksum", checksum);
		EltJsonInt(&d, "rows", rows);
	}
	if (extra_key)
		EltJsonBool(&d, extra_key, extra);
	EltAuditRecord(actor, action, source, EltJsonFinish(&d), EltAuditReason(NULL));
}

/*
 * Snapshot relid for the current user (see the top of this file): the id
 * of the new or reused snapshot, with its checksum and shape hash.
 */
int64
EltSnapshotCreate(Oid relid, char **checksum_out, char **shape_hash_out)
{
	char	   *relname;
	char	   *checksum;
	char	   *shape;
	char		shape_hash[ELT_SHA256_HEX_LEN + 1];
	char	   *storage = NULL;
	EltCatalogWrite cw;
	int64		id;
	MemoryContext outer = CurrentMemoryContext;
	EltCitusTable citus;
	int			citus_level = 0;

	relname = EltRelDisplayName(relid);
	/* a Citus table's first snapshot puts elt_snapshots on the workers */
	if (EltCitusTableInfo(relid, &citus))
		citus_level = EltCitusSequentialForSchema(get_namespace_oid(SNAPSHOT_SCHEMA, true));
	/*
	 * the caller's right to read every row and column, and the content now
	 * (of a Citus table, as this transaction sees it: a run's output is
	 * snapshotted after the run wrote it)
	 */
	checksum = EltTableChecksumHere(relid, NIL, true);
	shape = shape_json(relid);
	{
		char	   *key = shape_key(relid, shape);

		EltSha256Hex(key, strlen(key), shape_hash);
	}

	EltCatalogWriteBegin(&cw);
	/* one creator per role at a time: two copying the same content would collide */
	lock_snapshots(cw.actor);
	id = find_snapshot(cw.actor, shape_hash, checksum, &storage);
	if (id != 0 && !storage_exists(storage))
	{
		forget_snapshot(id);
		id = 0;
	}
	if (id == 0)
	{
		static SPIPlanPtr ins = NULL;
		Oid			types[8] = {TEXTOID, TEXTOID, OIDOID, JSONBOID, TEXTOID, TEXTOID, INT8OID, OIDOID};
		Datum		args[8];
		char		tmp[40];
		char		name_hash[ELT_SHA256_HEX_LEN + 1];
		char	   *copy_checksum;
		Oid			copy_oid;
		char	   *key;
		bool		isnull;
		int64		rows;

		ensure_schema();
		snprintf(tmp, sizeof(tmp), "copy_%d_%d", MyProcPid, (int) GetCurrentTransactionNestLevel());
		copy_rows(relid, tmp, cw.actor);
		copy_oid = storage_relid(tmp);
		/* what was copied is what is recorded (read with a snapshot that sees the copy) */
		PushCopiedSnapshot(GetActiveSnapshot());
		UpdateActiveSnapshotCommandId();
		copy_checksum = EltTableChecksum(copy_oid, NIL);
		PopActiveSnapshot();
		id = find_snapshot(cw.actor, shape_hash, copy_checksum, &storage);
		if (id != 0 && !storage_exists(storage))
		{
			forget_snapshot(id);
			id = 0;
		}
		if (id != 0)
		{
			EltSpiExec(psprintf("DROP TABLE %s.%s", SNAPSHOT_SCHEMA, quote_identifier(tmp)));
			audit_snapshot(cw.actor, "snapshot_create", id, relname, copy_checksum,
						   EltChecksumRows(copy_checksum), "reused", true);
			*checksum_out = MemoryContextStrdup(outer, copy_checksum);
			*shape_hash_out = MemoryContextStrdup(outer, shape_hash);
			EltCatalogWriteEnd(&cw);
			if (citus_level > 0)
				AtEOXact_GUC(true, citus_level);
			return id;
		}
		key = psprintf("%s:%s:%u", shape_hash, copy_checksum, cw.actor);
		EltSha256Hex(key, strlen(key), name_hash);
		storage = psprintf("s_%.24s", name_hash);
		EltSpiExec(psprintf("ALTER TABLE %s.%s RENAME TO %s", SNAPSHOT_SCHEMA, quote_identifier(tmp),
						  quote_identifier(storage)));
		EltSpiExec(psprintf("REVOKE ALL ON %s.%s FROM PUBLIC", SNAPSHOT_SCHEMA, quote_identifier(storage)));
		{
			EltCitusTable ct;
			int			guc_level = NewGUCNestLevel();

			/*
			 * A Citus copy's trigger is made on each of its shards, where
			 * the rows are written; Citus makes it only when told that
			 * the trigger is safe (it runs on the shard, reading nothing),
			 * and never a TRUNCATE trigger there: that one is on the table
			 * alone, which every TRUNCATE goes through
			 */
			if (EltCitusTableInfo(copy_oid, &ct))
			{
				(void) set_config_option("citus.enable_unsafe_triggers", "on", PGC_USERSET, PGC_S_SESSION,
										 GUC_ACTION_SAVE, true, 0, false);
				EltSpiExec(psprintf("CREATE TRIGGER immutable BEFORE INSERT OR UPDATE OR DELETE"
									" ON %s.%s FOR EACH STATEMENT EXECUTE FUNCTION elt._snapshot_immutable()",
									SNAPSHOT_SCHEMA, quote_identifier(storage)));
				EltSpiExec(psprintf("CREATE TRIGGER immutable_truncate BEFORE TRUNCATE"
									" ON %s.%s FOR EACH STATEMENT EXECUTE FUNCTION elt._snapshot_immutable()",
									SNAPSHOT_SCHEMA, quote_identifier(storage)));
			}
			else
				EltSpiExec(psprintf("CREATE TRIGGER immutable BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE"
									" ON %s.%s FOR EACH STATEMENT EXECUTE FUNCTION elt._snapshot_immutable()",
									SNAPSHOT_SCHEMA, quote_identifier(storage)));
			AtEOXact_GUC(true, guc_level);
		}
		grant_read(storage, cw.actor);
		rows = EltChecksumRows(copy_checksum);
		EltPrepare(&ins,
				   "INSERT INTO elt.snapshot_defs (storage, source_name, source_oid, columns, shape_hash,"
				   " checksum, row_count, created_by)"
				   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::pg_catalog.regrole)"
				   " RETURNING snapshot_id",
				   8, types);
		args[0] = CStringGetTextDatum(storage);
		args[1] = CStringGetTextDatum(relname);
		args[2] = ObjectIdGetDatum(relid);
		args[3] = DirectFunctionCall1(jsonb_in, CStringGetDatum(shape));
		args[4] = CStringGetTextDatum(shape_hash);
		args[5] = CStringGetTextDatum(copy_checksum);
		args[6] = Int64GetDatum(rows);
		args[7] = ObjectIdGetDatum(cw.actor);
		EltExec(ins, args, NULL, 1);
		id = EltSpiGetInt64(0, "snapshot_id", &isnull);
		audit_snapshot(cw.actor, "snapshot_create", id, relname, copy_checksum, rows, "reused", false);
		checksum = copy_checksum;
	}
	else
		audit_snapshot(cw.actor, "snapshot_create", id, relname, checksum, EltChecksumRows(checksum),
					   "reused", true);
	*checksum_out = MemoryContextStrdup(outer, checksum);
	*shape_hash_out = MemoryContextStrdup(outer, shape_hash);
	EltCatalogWriteEnd(&cw);
	if (citus_level > 0)
		AtEOXact_GUC(true, citus_level);
	return id;
}

PG_FUNCTION_INFO_V1(elt_snapshot_create);

/* elt.snapshot_create(rel regclass) RETURNS bigint */
Datum
elt_snapshot_create(PG_FUNCTION_ARGS)
{
	char	   *checksum;
	char	   *shape_hash;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("rel must not be null")));
	if (EltIsCitusShard(PG_GETARG_OID(0)))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("%s is a Citus shard", EltRelDisplayName(PG_GETARG_OID(0))),
				 errdetail("A shard holds part of the rows of its table."),
				 errhint("Snapshot the distributed or reference table it belongs to.")));
	EltRequireCatalog("snapshot_defs");
	PG_RETURN_INT64(EltSnapshotCreate(PG_GETARG_OID(0), &checksum, &shape_hash));
}

/*
 * A snapshot's storage, checksum and creator, or an error naming it; with
 * the latest snapshot when latest (after waiting for a lock).
 */
static void
load_snapshot(int64 id, char **storage, char **checksum, Oid *owner, char **source, bool latest)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[1] = {INT8OID};
	Datum		args[1];

	EltPrepare(&plan,
			   "SELECT storage::pg_catalog.text AS storage, checksum, created_by::pg_catalog.oid AS owner,"
			   " source_name FROM elt.snapshot_defs WHERE snapshot_id = $1",
			   1, types);
	args[0] = Int64GetDatum(id);
	if (latest)
		EltExecLatest(plan, args, NULL, 1);
	else
		EltExec(plan, args, NULL, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("snapshot " INT64_FORMAT " does not exist", id),
				 errhint("elt.snapshots lists the snapshots.")));
	*storage = EltSpiGetText(0, "storage");
	*checksum = EltSpiGetText(0, "checksum");
	{
		bool		isnull;

		*owner = DatumGetObjectId(EltSpiGetDatum(0, "owner", &isnull));
	}
	*source = EltSpiGetText(0, "source_name");
}

static Oid
storage_oid(const char *storage)
{
	Oid			relid = storage_relid(storage);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the rows of snapshot %s are missing", storage),
				 errdetail("Table %s.%s does not exist.", SNAPSHOT_SCHEMA, storage)));
	return relid;
}

/* Whether the caller may drop a snapshot of the role owner: its members, elt_operator. */
static bool
may_manage(Oid actor, Oid owner)
{
	return EltRoleIsOperator(actor) || has_privs_of_role(actor, owner);
}

PG_FUNCTION_INFO_V1(elt_snapshot_verify);

/* elt.snapshot_verify(snapshot_id bigint) RETURNS boolean: the rows still have the recorded checksum. */
Datum
elt_snapshot_verify(PG_FUNCTION_ARGS)
{
	int64		id;
	char	   *storage,
			   *recorded,
			   *source;
	Oid			owner;
	char	   *actual;
	Oid			relid;
	EltCatalogWrite cw;
	bool		ok;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("snapshot_id must not be null")));
	EltRequireCatalog("snapshot_defs");
	id = PG_GETARG_INT64(0);
	EltCatalogWriteBegin(&cw);
	load_snapshot(id, &storage, &recorded, &owner, &source, false);
	relid = storage_oid(storage);
	if (pg_class_aclcheck(relid, cw.actor, ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to read snapshot " INT64_FORMAT, id),
				 errhint("Snapshots are readable by the roles that made them.")));
	actual = EltTableChecksum(relid, NIL);
	ok = (strcmp(actual, recorded) == 0);
	if (!ok)
		ereport(WARNING,
				(errmsg("snapshot " INT64_FORMAT " does not match its checksum", id),
				 errdetail("Recorded %s, now %s.", recorded, actual)));
	audit_snapshot(cw.actor, "snapshot_verify", id, source, actual, EltChecksumRows(actual), "ok", ok);
	EltCatalogWriteEnd(&cw);
	PG_RETURN_BOOL(ok);
}

/* Drop snapshot id's rows and its entry (inside a catalog write). */
static void
drop_snapshot(int64 id, const char *storage)
{
	if (storage_exists(storage))
		EltSpiExec(psprintf("DROP TABLE %s.%s", SNAPSHOT_SCHEMA, quote_identifier(storage)));
	forget_snapshot(id);
}

PG_FUNCTION_INFO_V1(elt_snapshot_drop);

/*
 * elt.snapshot_drop(snapshot_id bigint, force boolean DEFAULT false):
 * drop a snapshot made by the caller's role (any, for elt_operator and
 * superusers).  One
 * that a run's manifest references (elt.run_snapshots) needs force: the
 * run cannot be replayed without it.
 */
Datum
elt_snapshot_drop(PG_FUNCTION_ARGS)
{
	int64		id;
	bool		force;
	char	   *storage,
			   *checksum,
			   *source;
	Oid			owner;
	EltCatalogWrite cw;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("snapshot_id must not be null")));
	EltRequireCatalog("snapshot_defs");
	id = PG_GETARG_INT64(0);
	force = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);
	EltCatalogWriteBegin(&cw);
	load_snapshot(id, &storage, &checksum, &owner, &source, false);
	if (!may_manage(cw.actor, owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("snapshot " INT64_FORMAT " belongs to role %s", id, GetUserNameFromId(owner, false)),
				 errhint("Only members of the role that made it, members of %s and superusers may drop it.", ELT_ROLE_OPERATOR)));
	/*
	 * After every creation and reference in flight of the role's snapshots
	 * (they hold this lock until they end); then read it again, as a drop
	 * that committed meanwhile left it.
	 */
	lock_snapshots(owner);
	load_snapshot(id, &storage, &checksum, &owner, &source, true);
	{
		static SPIPlanPtr refs = NULL;
		Oid			types[1] = {INT8OID};
		Datum		args[1];

		EltPrepare(&refs,
				   "SELECT (SELECT pg_catalog.count(*) FROM elt.run_snapshots WHERE snapshot_id = $1) AS n,"
				   " pg_catalog.string_agg(run_id::pg_catalog.text, ', ' ORDER BY run_id) AS runs"
				   " FROM (SELECT run_id FROM elt.run_snapshots"
				   " WHERE snapshot_id = $1 ORDER BY run_id LIMIT 10) r",
				   1, types);
		args[0] = Int64GetDatum(id);
		EltExecLatest(refs, args, NULL, 1);
		if (!force && SPI_processed > 0)
		{
			bool		isnull;

			int64		n = EltSpiGetInt64(0, "n", &isnull);

			if (n > 0)
				ereport(ERROR,
						(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
						 n == 1
						 ? errmsg("snapshot " INT64_FORMAT " is referenced by the manifest of run %s",
								  id, EltSpiGetText(0, "runs"))
						 : errmsg("snapshot " INT64_FORMAT " is referenced by the manifests of " INT64_FORMAT " runs: %s%s",
								  id, n, EltSpiGetText(0, "runs"), n > 10 ? ", ..." : ""),
						 errdetail("Without it, those runs cannot be replayed."),
						 errhint("Pass force => true to drop it anyway.")));
		}
	}
	drop_snapshot(id, storage);
	audit_snapshot(cw.actor, "snapshot_drop", id, source, checksum, EltChecksumRows(checksum), "force", force);
	EltCatalogWriteEnd(&cw);
	PG_RETURN_BOOL(true);
}

PG_FUNCTION_INFO_V1(elt_snapshot_purge);

/*
 * elt.snapshot_purge(older_than interval DEFAULT NULL, keep_last integer
 * DEFAULT NULL) RETURNS bigint: drop the snapshots of the roles the caller
 * has the privileges of (all, for elt_operator and superusers) made more
 * than older_than ago, except each role's keep_last newest of each source
 * and those that a run's manifest references; returns how many were
 * dropped.
 */
Datum
elt_snapshot_purge(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[2] = {INTERVALOID, INT4OID};
	Datum		args[2];
	char		nulls[2] = {' ', ' '};
	EltCatalogWrite cw;
	uint64		i,
				n;
	SPITupleTable *tt;
	int64		dropped = 0;
	List	   *locked = NIL;
	ListCell   *lc;

	if (PG_ARGISNULL(0) && PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("give older_than, keep_last or both"),
				 errhint("For example elt.snapshot_purge(interval '90 days', 3).")));
	if (!PG_ARGISNULL(1) && PG_GETARG_INT32(1) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("keep_last must not be negative")));
	EltRequireCatalog("snapshot_defs");
	EltCatalogWriteBegin(&cw);
	EltPrepare(&plan,
			   "SELECT snapshot_id, storage::pg_catalog.text AS storage, created_by::pg_catalog.oid AS owner"
			   " FROM (SELECT s.*, pg_catalog.row_number() OVER (PARTITION BY created_by, source_name"
			   "                                                 ORDER BY created_at DESC, snapshot_id DESC) AS nth"
			   "       FROM elt.snapshot_defs s) s"
			   " WHERE ($1 IS NULL OR created_at < pg_catalog.now() - $1)"
			   "   AND ($2 IS NULL OR nth > $2)"
			   "   AND NOT EXISTS (SELECT FROM elt.run_snapshots r WHERE r.snapshot_id = s.snapshot_id)"
			   " ORDER BY snapshot_id",
			   2, types);
	args[0] = PG_ARGISNULL(0) ? (Datum) 0 : PG_GETARG_DATUM(0);
	nulls[0] = PG_ARGISNULL(0) ? 'n' : ' ';
	args[1] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);
	nulls[1] = PG_ARGISNULL(1) ? 'n' : ' ';

	/*
	 * Lock the roles whose snapshots it would drop (see the top of this
	 * file), then choose again with the latest snapshot: creations and
	 * references that were in flight have ended.  A role whose snapshots
	 * are being made or dropped right now is skipped, not waited for:
	 * waiting while holding other roles' locks would make them wait too
	 * (one role's open transaction would hold up every role's snapshots).
	 * Its snapshots, like one that only now qualifies, are left for the
	 * next purge.
	 */
	EltExec(plan, args, nulls, 0);
	tt = SPI_tuptable;
	n = SPI_processed;
	for (i = 0; i < n; i++)
	{
		bool		isnull;
		Oid			owner = DatumGetObjectId(SPI_getbinval(tt->vals[i], tt->tupdesc, 3, &isnull));

		if (may_manage(cw.actor, owner))
			locked = list_append_unique_oid(locked, owner);
	}
	list_sort(locked, list_oid_cmp);
	foreach(lc, locked)
	{
		Oid			role = lfirst_oid(lc);

		if (!try_lock_snapshots(role))
		{
			const char *name = GetUserNameFromId(role, true);

			ereport(NOTICE,
					(errmsg("the snapshots of role %s are left for the next purge: it is making or dropping one now",
							name ? quote_identifier(name) : psprintf("%u", role))));
			locked = foreach_delete_current(locked, lc);
		}
	}
	EltExecLatest(plan, args, nulls, 0);
	tt = SPI_tuptable;
	n = SPI_processed;
	{
		int64	   *ids = palloc(sizeof(int64) * Max(n, 1));
		char	  **storages = palloc(sizeof(char *) * Max(n, 1));
		Oid		   *owners = palloc(sizeof(Oid) * Max(n, 1));

		/* read them all before the drops run statements of their own */
		for (i = 0; i < n; i++)
		{
			bool		isnull;

			ids[i] = DatumGetInt64(SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &isnull));
			storages[i] = SPI_getvalue(tt->vals[i], tt->tupdesc, 2);
			owners[i] = DatumGetObjectId(SPI_getbinval(tt->vals[i], tt->tupdesc, 3, &isnull));
		}
		for (i = 0; i < n; i++)
		{
			if (!list_member_oid(locked, owners[i]))
				continue;
			drop_snapshot(ids[i], storages[i]);
			dropped++;
		}
	}
	{
		EltJson		d;

		EltJsonBegin(&d);
		EltJsonInt(&d, "dropped", dropped);
		EltAuditRecord(cw.actor, "snapshot_purge", NULL, EltJsonFinish(&d), EltAuditReason(NULL));
	}
	EltCatalogWriteEnd(&cw);
	PG_RETURN_INT64(dropped);
}
