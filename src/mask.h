/*
 * mask.h — masking rules: what a rule is once checked against a column
 * (mask_rules.c) and the keyed functions that apply it.
 */
#ifndef ELT_MASK_H
#define ELT_MASK_H

#include "postgres.h"
#include "utils/jsonb.h"
#include "utils/rel.h"

/* The rules elt.mask_set() accepts. */
typedef enum EltMaskKind
{
	ELT_MASK_NULL,
	ELT_MASK_CONSTANT,
	ELT_MASK_HASH,
	ELT_MASK_PSEUDONYM,
	ELT_MASK_PARTIAL,
	ELT_MASK_NOISE,
	ELT_MASK_GENERALIZE,
	ELT_MASK_CUSTOM
} EltMaskKind;

/* The kinds of column a rule can apply to (by base type). */
typedef enum EltMaskType
{
	ELT_MT_TEXT,				/* text, varchar, bpchar */
	ELT_MT_INT2,
	ELT_MT_INT4,
	ELT_MT_INT8,
	ELT_MT_NUMERIC,
	ELT_MT_FLOAT4,
	ELT_MT_FLOAT8,
	ELT_MT_DATE,
	ELT_MT_TIMESTAMP,
	ELT_MT_TIMESTAMPTZ,
	ELT_MT_UUID,
	ELT_MT_BYTEA,
	ELT_MT_OTHER
} EltMaskType;

/* The kinds of pseudonym. */
typedef enum EltPseudoKind
{
	ELT_PSEUDO_EMAIL,
	ELT_PSEUDO_NAME,
	ELT_PSEUDO_FIRST_NAME,
	ELT_PSEUDO_LAST_NAME,
	ELT_PSEUDO_PHONE,
	ELT_PSEUDO_ADDRESS,
	ELT_PSEUDO_IBAN,
	ELT_PSEUDO_TEXT
} EltPseudoKind;

/* A rule checked against one column: everything applying it needs. */
typedef struct EltMaskRule
{
	EltMaskKind kind;
	Oid			typid;			/* the column's type (a domain: its own oid) */
	int32		typmod;
	Oid			basetype;
	EltMaskType mtype;
	int			maxlen;			/* characters a text column holds; -1 unbounded */
	/* constant */
	bool		constant_null;
	Datum		constant;
	/* hash: hex digits of a text */
	int			hash_len;
	/* pseudonym */
	EltPseudoKind pseudo;
	/* partial */
	int			prefix;
	int			suffix;
	char		fill;
	/* noise: ratio of the value (numbers), or an amount (numbers; days for dates) */
	double		ratio;
	double		amount;
	/* generalize: unit of dates, step of numbers (as text, for numeric) */
	const char *unit;
	char	   *step;
	/* custom: the expression, over the column called "value" */
	char	   *expression;
	/* what a row's noise is keyed by besides the row: relation and column */
	char	   *salt;
	/* hash, pseudonym, noise: the key domain given (NULL: the table owner's) */
	char	   *domain;
} EltMaskRule;

/* The extension's masking key, and the keys derived from it: 32 bytes. */
#define ELT_MASK_KEY_BYTES 32

/* mask_rules.c */
extern EltMaskKind EltMaskKindFromName(const char *name);
extern const char *EltMaskKindName(EltMaskKind kind);
extern void EltMaskRuleCheck(EltMaskRule *r, const char *column, Oid typid, int32 typmod,
							 bool notnull, Jsonb *args);
extern void EltMaskDeriveKey(const uint8 *master, const char *domain, uint8 *out);
extern Datum EltMaskApply(const EltMaskRule *r, const uint8 *key, Datum value,
						  const char *rowkey, bool *isnull);
extern void EltMaskCustomCheck(const char *column, const char *expression, Oid typid,
							   int32 typmod);
extern char *EltMaskCustomSql(const char *expression, const char *column_sql, Oid typid,
							  int32 typmod);

/* mask.c: masking one statement over a relation */
extern char *EltMaskBegin(Relation rel, bool masked, bool for_insert, char **columns);
extern int64 EltMaskToken(void);
extern void EltMaskEnd(void);
extern void EltMaskForget(Oid relid);
extern char *EltMaskRulesJson(Relation rel);
extern char *EltMaskRowKeySql(Relation rel, const char *alias);

#endif							/* ELT_MASK_H */
