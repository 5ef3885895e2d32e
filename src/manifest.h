#ifndef ELT_MANIFEST_H
#define ELT_MANIFEST_H

#include "postgres.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "util.h"

/*
 * One step of a run's manifest: a transform run, on its own or inside
 * elt.run_begin() ... elt.run_end(), or a step of a replay.
 * transform_run.c fills in what ran; manifest.c records what was read and
 * written.
 */
typedef struct EltRunStep
{
	/* set by EltRunStepBegin */
	bool		enabled;		/* false while the extension's SQL predates manifests */
	int64		run_id;			/* the pipeline run, or 0: a run of its own */
	const char *policy;			/* none, checksum, full */
	int			step;
	TimestampTz clock;			/* elt.now() */
	int64		seed;			/* of elt.random() */
	char	   *fingerprint;	/* a run of its own: its fingerprint */
	Oid			role;			/* a run of its own: whose it is */

	/* what ran, set by the caller */
	const char *transform;
	int64		transform_id;
	int			version;
	const char *code_hash;
	const char *mode;
	const char *lineage;
	const char *sql;
	const char *search_path;
	Jsonb	   *params;
	Oid			target;
	TimestampTz started_at;
	TimestampTz finished_at;
	int64		rows_read;
	int64		rows_written;
	int64		rows_deleted;
	bool		rows_deleted_known;
	bool		rows_read_unknown;	/* it read a Citus table: no rows_read */

	/* what was read and written, set by manifest.c */
	List	   *relations;		/* names of the SQL's relation references */
	char	   *not_replayable;	/* why the step cannot be replayed, or NULL */
	StringInfoData inputs;		/* JSON objects, comma separated */
	char	   *output;			/* JSON object */
	List	   *snapshots;		/* ids referenced, as decimal strings */
	List	   *unlocked;		/* relations the step's role may not lock (READ COMMITTED) */
	const char *sandbox_target;	/* replay: the sandbox table written */
} EltRunStep;

extern void EltManifestInit(void);
extern bool EltManifestChecksums(void);
extern void EltRunStepBegin(EltRunStep *st, TimestampTz started);
extern void EltRunStepInputs(EltRunStep *st, List *sources);
extern void EltRunStepOutput(EltRunStep *st);
extern void EltRunStepRecord(EltRunStep *st, int64 transform_run_id);
extern bool EltPipelineClock(TimestampTz *clock);
extern int64 EltPipelineRunId(void);
extern bool EltPipelineRandom(double *value);
extern void EltTransformRunEnter(int64 run_id);
extern void EltTransformRunLeave(void);
extern bool EltInTransformRun(void);
extern int64 EltCurrentRunId(void);
extern int64 EltDrawRunId(void);

/* what replay.c shares with the recording of runs */
extern char *EltCurrentFingerprint(void);
extern char *EltRelationJson(EltRunStep *st, Oid relid, const char *role, bool output);
extern void EltInsertRun(int64 run_id, const char *pipeline_name, const char *kind, Jsonb *params,
						 const char *policy, TimestampTz clock, int64 seed, const char *fingerprint,
						 Oid role, TimestampTz started, int64 replay_of, const char *sandbox, bool imported);
extern void EltInsertStep(int64 run_id, EltRunStep *st, int64 transform_run_id);
extern char *EltStoreManifest(int64 run_id, TimestampTz finished);
extern void EltAuditRunBegin(EltJson *d, int64 run_id);
extern void EltAuditRun(Oid actor, const char *action, const char *object, EltJson *d);
extern char *EltLoadManifest(int64 run_id, Oid *role_out, bool *imported_out, bool to_replay);

/* snapshot.c */
extern int64 EltSnapshotCreate(Oid relid, char **checksum, char **shape_hash);

#endif							/* ELT_MANIFEST_H */
