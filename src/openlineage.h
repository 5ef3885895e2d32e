/*
 * openlineage.h — transform runs as OpenLineage events.
 */
#ifndef ELT_OPENLINEAGE_H
#define ELT_OPENLINEAGE_H

extern void EltOpenLineageInit(void);

#endif							/* ELT_OPENLINEAGE_H */
