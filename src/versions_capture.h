/*
 * versions_capture.h — schema versions recorded by event triggers
 * (versions_capture.c); the trigger functions are called by SQL only.
 */
#ifndef ELT_VERSIONS_CAPTURE_H
#define ELT_VERSIONS_CAPTURE_H

#include "postgres.h"

extern void EltDdlCaptureInit(void);

#endif							/* ELT_VERSIONS_CAPTURE_H */
