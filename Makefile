# elt_governance — PGXS build.
#
# Two commands are for people (see README.md):
#   make demo   install what is missing, build, install, run scripts/demo.sql
#   make test   install what is missing, build, install, run every suite
# and one for the Citus suite (docs/citus.md):
#   make test-citus   build Citus 13.2.2 into that PostgreSQL once
#                     (scripts/citus_build.sh), then run test/t/025_citus.pl
# Both are driven by scripts in scripts/ and need no PostgreSQL headers to be
# present beforehand, so they are defined before PGXS is included.

ORCHESTRATION_GOALS := demo test test-citus setup
ifneq ($(filter $(ORCHESTRATION_GOALS),$(MAKECMDGOALS)),)

.PHONY: $(ORCHESTRATION_GOALS)
demo:
	@bash scripts/demo.sh
test:
	@bash scripts/test.sh
test-citus:
	@bash scripts/citus_build.sh >/dev/null
	@SUITES=citus bash scripts/test.sh
setup:
	@bash scripts/setup.sh

else

EXTENSION = elt_governance
MODULE_big = elt_governance
OBJS = \
	src/elt_governance.o \
	src/util.o \
	src/util_json.o \
	src/util_subxact.o \
	src/util_sql.o \
	src/citus.o \
	src/settings.o \
	src/audit.o \
	src/audit_verify.o \
	src/audit_replay.o \
	src/govern.o \
	src/govern_lookup.o \
	src/versions_store.o \
	src/versions_shape.o \
	src/versions_capture.o \
	src/contracts_classify.o \
	src/contracts_keys.o \
	src/contracts_maintain.o \
	src/contracts_newer.o \
	src/contracts_judge.o \
	src/contracts_swap.o \
	src/contracts_record.o \
	src/contracts_rules.o \
	src/contracts_script.o \
	src/contracts_script_state.o \
	src/contracts_live.o \
	src/migrations.o \
	src/backfill.o \
	src/backfill_chunk.o \
	src/backfill_shard.o \
	src/backfill_worker.o \
	src/transform.o \
	src/transform_run.o \
	src/transform_pushdown.o \
	src/transform_undo.o \
	src/transform_revert.o \
	src/lineage.o \
	src/lineage_functions.o \
	src/lineage_keys.o \
	src/lineage_rows.o \
	src/lineage_capture.o \
	src/lineage_chunk.o \
	src/lineage_store.o \
	src/openlineage.o \
	src/checksum.o \
	src/checksum_citus.o \
	src/checksum_ranges.o \
	src/snapshot.o \
	src/manifest.o \
	src/replay.o \
	src/checks.o \
	src/deploy.o \
	src/deploy_switch.o \
	src/deploy_compare.o \
	src/mask_rules.o \
	src/mask.o \
	src/sandbox.o \
	src/sandbox_run.o \
	src/sandbox_sample.o \
	src/sandbox_synth_plan.o \
	src/sandbox_synth.o \
	src/roles.o

DATA = $(wildcard sql/elt_governance--*.sql)

# the version the library reports (OpenLineage's producer): the control file's
EXTVERSION := $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" elt_governance.control)
ifeq ($(EXTVERSION),)
$(error no default_version in elt_governance.control)
endif
PG_CPPFLAGS = -I$(srcdir)/src -Wall -Wextra -Werror -Wno-unused-parameter -DELT_EXTVERSION='"$(EXTVERSION)"'
SHLIB_LINK = -lcrypto

# pg_regress suites, one per engine (test/sql, test/expected)
REGRESS = govern versions_capture versions_diff versions_history versions_partitions audit contracts contracts_script contracts_catalog contracts_rebuild contracts_txn contracts_txn2 backfill transform lineage checksum manifest deploy security security_lineage security_replay security_deploy backfill_caps checks snapshot migrations openlineage tools_dbt deploy_views contracts_lineage transform_revert lineage_constructs mask sandbox sandbox_run sandbox_synth
# isolation specs (test/specs, test/expected)
ISOLATION = versions_concurrent_ddl govern_race migrations_scope contracts_locks backfill_race backfill_writes transform_runs manifest_locks deploy_switch snapshot_lock revert_race
# TAP tests (test/t)
TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

# Each kind of suite gets its own temporary cluster with the library
# preloaded, so none depends on a server being set up beforehand.
REGRESS_OPTS = --inputdir=test --outputdir=test \
	--temp-instance=$(CURDIR)/tmp_check_regress \
	--temp-config=$(srcdir)/test/elt.conf
ISOLATION_OPTS = --inputdir=test --outputdir=test/output_iso \
	--temp-instance=$(CURDIR)/tmp_check_iso \
	--temp-config=$(srcdir)/test/elt.conf

EXTRA_CLEAN = tmp_check_regress tmp_check_iso test/results test/output_iso \
	test/regression.diffs test/regression.out test/log

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies: rebuild every object when a header changes.
$(OBJS): $(wildcard $(srcdir)/src/*.h)

# One target per kind of suite, so that scripts/test.sh runs all three even
# when one fails (installcheck stops at the first failing kind).
.PHONY: installcheck-regress installcheck-isolation installcheck-tap
installcheck-regress:
	$(pg_regress_installcheck) $(REGRESS_OPTS) $(REGRESS)
installcheck-isolation:
	$(pg_isolation_regress_installcheck) $(ISOLATION_OPTS) $(ISOLATION)
installcheck-tap:
	$(prove_installcheck)

endif
