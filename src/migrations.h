/*
 * migrations.h — the change protocol (migrations.c): migration windows,
 * approvers and registered consumers.  Called by the contracts engine, the
 * version store, the capture triggers, deployments and the entry point;
 * migrations.c itself calls only the shared layers.
 */
#ifndef ELT_MIGRATIONS_H
#define ELT_MIGRATIONS_H

#include "postgres.h"

#include "util.h"

extern bool elt_require_second_approver;
extern char *elt_migration_setting;
extern char *elt_approved_by_setting;

extern void EltMigrationsInit(void);
extern int64 EltCurrentMigration(void);
extern int64 EltMigrationJoin(EltCatalogWrite *cw);
extern int64 EltMigrationWindowPeek(void);
extern bool EltContractsReady(void);
extern void EltForgetConsumers(EltCatalogWrite *cw, Oid relid, const char *object);

#endif							/* ELT_MIGRATIONS_H */
