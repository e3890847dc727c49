/*-------------------------------------------------------------------------
 *
 * govern.h
 *	  Governed tables (DESIGN §10): a change to a table's rows is held as a
 *	  request and applied when the request is approved.
 *
 * govern.c has the SQL-callable govern() and ungovern() and the trigger
 * that holds a change; govern_apply.c builds the statements that make a
 * held change (as the table's owner on approval, and as the requester, in
 * a subtransaction rolled back, when it is held) and keeps the held
 * changes' outcomes.  The engine calls govern_apply() and govern_discard()
 * from engine.c, where the rules of which outcome closes a request live.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APPROVAL_GOVERN_H
#define APPROVAL_GOVERN_H

#include "engine.h"

#include "utils/rel.h"

/* The name of the trigger govern() installs */
#define GOVERN_TRIGGER_NAME "approval_governed"

/* What the statements of a governed table need to know about it */
typedef struct GovTable
{
	Oid			relid;
	Oid			owner;
	char	   *qname;			/* schema.table, quoted */
	int			nkeys;
	char	  **keys;			/* primary key columns, in index order */
	char	  **keyops;			/* their equality operators, OPERATOR(schema.=) */
	int			ncols;
	char	  **cols;			/* every column that is not dropped */
	bool	   *generated;
	bool	   *identity_always;
	bool		has_identity_always;
} GovTable;

/* The kinds of change, in their canonical order */
typedef enum GovOp
{
	GOV_INSERT,
	GOV_UPDATE,
	GOV_DELETE,
	GOV_OP_COUNT
} GovOp;

extern const char *const gov_op_names[GOV_OP_COUNT];

/* govern_apply.c */
extern GovTable *gov_table_load(Relation rel);
extern bool gov_applying(Relation rel);
extern void gov_check_as_requester(GovTable *t, GovOp op, Jsonb *key, Jsonb *newrow,
								   ArrayType *changed);

#endif							/* APPROVAL_GOVERN_H */
