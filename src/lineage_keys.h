/*
 * lineage_keys.h — canonical key text (lineage_keys.c): the lowest layer
 * of row lineage, shared by capture, chunks, tracing and checksum bounds.
 */
#ifndef ELT_LINEAGE_KEYS_H
#define ELT_LINEAGE_KEYS_H

#include "postgres.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"

/* Prints keys as canonical text, fast for the common types. */
typedef enum EltKeyPrintKind
{
	/* stored in chunks of packed keys: the values are fixed */
	ELT_KP_INT2 = 1,
	ELT_KP_INT4 = 2,
	ELT_KP_INT8 = 3,
	ELT_KP_DATE = 4,
	ELT_KP_TEXT = 5,
	ELT_KP_OUT = 6				/* the type's output function, settings pinned */
} EltKeyPrintKind;

typedef struct EltKeyCol
{
	EltKeyPrintKind kind;
	FmgrInfo	out;
} EltKeyCol;

typedef struct EltKeyPrinter
{
	int			ncols;
	bool		row;			/* a row literal (several columns, or a row type) */
	EltKeyCol  *cols;
} EltKeyPrinter;

extern void EltKeyPrinterInit(EltKeyPrinter *p, int ncols, const Oid *types, MemoryContext cxt);
extern void EltKeyPrint(EltKeyPrinter *p, const Datum *values, const bool *isnull, StringInfo out);
extern void EltKeyPrintValue(EltKeyPrintKind kind, FmgrInfo *out, Datum v, StringInfo buf);
extern void EltKeyQuoteField(StringInfo out, int start);
extern List *EltSplitRowLiteral(const char *s, bool *ok);
extern char *EltKeyTextCall(FmgrInfo *out, Datum value);
extern char *EltLineageKeyText(Datum value, Oid typid);

#endif							/* ELT_LINEAGE_KEYS_H */
