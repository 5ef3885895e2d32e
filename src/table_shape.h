/*
 * table_shape.h — the recorded shape of a table.
 */
#ifndef ELT_TABLE_SHAPE_H
#define ELT_TABLE_SHAPE_H

#include "postgres.h"

extern Datum EltTableShape(Oid relid);

#endif							/* ELT_TABLE_SHAPE_H */
