/*
 * elt_governance.c — module entry point: settings and hooks.
 *
 * The library works loaded on demand (the first call of one of its functions
 * or event triggers loads it) and preloaded through shared_preload_libraries.
 * _PG_init only defines settings and installs per-backend hooks, so both ways
 * behave the same for everything in this file.
 *
 * Layering: the top.  It calls down into the engines' Init functions and
 * points the settings at variables that live below it (settings.c for
 * those several engines read, the owning engine for the others); nothing
 * calls back into it, and it has no header.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "audit.h"
#include "backfill.h"
#include "manifest.h"
#include "deploy.h"
#include "contracts.h"
#include "migrations.h"
#include "openlineage.h"
#include "settings.h"
#include "transform.h"
#include "versions_capture.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* Define the elt.* settings and install hooks. */
void
_PG_init(void)
{
	DefineCustomBoolVariable("elt.enabled",
							 "Enables elt_governance's capture of DDL on governed tables.",
							 "Turn off only for a maintenance window or a restore: "
							 "while off, DDL is neither recorded nor checked.",
							 &elt_enabled,
							 true,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("elt.reason",
							   "Reason recorded in the audit log for governance actions of this session.",
							   "For example a ticket number; a reason passed to a function takes precedence.",
							   &elt_reason,
							   "",
							   PGC_USERSET,
							   0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("elt.large_table_rows",
							"Rows above which CREATE INDEX or DROP INDEX without CONCURRENTLY on a governed table is a lock hazard.",
							"Compared with the planner's estimate of the table's rows.",
							&elt_large_table_rows,
							100000,
							0, INT_MAX,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("elt.undo_max_rows",
							"Rows a transform run updates or deletes above which it keeps no before-images.",
							"A run that changes more rows cannot be reverted; 0 keeps none (only appends are revertible).",
							&elt_undo_max_rows,
							1000000,
							0, INT_MAX,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("elt.undo_retention",
							"How long a transform run can be reverted after it finished.",
							"Its before-images are purged after that; 0 keeps nothing and no run can be reverted.",
							&elt_undo_retention,
							7 * 24 * 3600,
							0, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("elt.citus_pushdown",
							 "Runs a transform's row work on Citus's shards when its tables are colocated.",
							 "Off: every transform run with row lineage into a Citus table is pulled to the coordinator.",
							 &elt_citus_pushdown,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("elt.require_second_approver",
							 "Refuses a migration approved by the session user.",
							 "With it on, elt.migration_begin() needs an approver other than the session user.",
							 &elt_require_second_approver,
							 false,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("elt.migration",
							   "Name of the migration every governed change of this session joins.",
							   "Set through PGOPTIONS for a migration tool's run: the first governed statement opens or joins the named window of the session user.",
							   &elt_migration_setting,
							   "",
							   PGC_USERSET,
							   0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("elt.approved_by",
							   "Approver of the migration named by elt.migration.",
							   "Checked as elt.migration_begin() checks approved_by; empty: the named migration approves nothing.",
							   &elt_approved_by_setting,
							   "",
							   PGC_USERSET,
							   0,
							   NULL, NULL, NULL);

	EltBackfillInit();
	EltManifestInit();
	EltDeployInit();
	EltOpenLineageInit();
	MarkGUCPrefixReserved("elt");

	EltAuditInit();
	EltDdlCaptureInit();
	EltMigrationsInit();
}
