/*
 * versions_shape.h — the recorded shape of a table.
 */
#ifndef ELT_VERSIONS_SHAPE_H
#define ELT_VERSIONS_SHAPE_H

#include "postgres.h"

extern Datum EltTableShape(Oid relid);

#endif							/* ELT_VERSIONS_SHAPE_H */
