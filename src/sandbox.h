/*
 * sandbox.h — sandboxes (sandbox.c): what the launcher's scanner calls.
 */
#ifndef ELT_SANDBOX_H
#define ELT_SANDBOX_H

#include "postgres.h"

extern int	EltSandboxExpire(void);

#endif							/* ELT_SANDBOX_H */
