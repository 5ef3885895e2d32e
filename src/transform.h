/*
 * transform.h — versioned SQL transforms and their runs.
 */
#ifndef ELT_TRANSFORM_H
#define ELT_TRANSFORM_H

#include "postgres.h"

extern char *EltNormalizeSql(const char *sql);
extern int64 EltCurrentRunId(void);
extern int64 EltDrawRunId(void);
extern PGDLLEXPORT void elt_transform_failure_main(Datum main_arg);

#endif							/* ELT_TRANSFORM_H */
