/*-------------------------------------------------------------------------
 *
 * approval.h
 *	  Shared declarations of the approval extension.
 *
 * Error codes are the public SQLSTATEs of DESIGN §9 (class "AP").  Every
 * user-facing error goes through ereport() with one of them, or with a
 * standard PostgreSQL code where one fits.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APPROVAL_H
#define APPROVAL_H

#include "postgres.h"

#include "executor/spi.h"
#include "nodes/pg_list.h"
#include "utils/array.h"
#include "utils/jsonb.h"

/* SQLSTATEs of class AP (DESIGN §9) */
#define ERRCODE_AP_REQUEST_NOT_FOUND		MAKE_SQLSTATE('A','P','0','0','1')
#define ERRCODE_AP_REQUEST_CLOSED			MAKE_SQLSTATE('A','P','0','0','2')
#define ERRCODE_AP_NOT_AN_APPROVER			MAKE_SQLSTATE('A','P','0','0','3')
#define ERRCODE_AP_ALREADY_DECIDED			MAKE_SQLSTATE('A','P','0','0','4')
#define ERRCODE_AP_INVALID_DEFINITION		MAKE_SQLSTATE('A','P','0','0','5')
#define ERRCODE_AP_ACK_MISSING				MAKE_SQLSTATE('A','P','0','0','6')
#define ERRCODE_AP_SELF_APPROVAL			MAKE_SQLSTATE('A','P','0','0','7')
#define ERRCODE_AP_NO_WORKFLOW_MATCHES		MAKE_SQLSTATE('A','P','0','0','8')
#define ERRCODE_AP_INVALID_TOKEN			MAKE_SQLSTATE('A','P','0','0','9')
#define ERRCODE_AP_ACTOR_NOT_ALLOWED		MAKE_SQLSTATE('A','P','0','1','0')
#define ERRCODE_AP_TARGET_UNRESOLVABLE		MAKE_SQLSTATE('A','P','0','1','1')

/* Names of the roles the extension creates */
#define APPROVAL_ADMIN_ROLE		"approval_admin"
#define APPROVAL_USER_ROLE		"approval_user"
#define APPROVAL_GATEWAY_ROLE	"approval_gateway"

/* GUCs (approval.c) */
extern char *approval_actor;
extern bool approval_notify;
extern char *approval_notify_channel;
extern char *approval_databases;
extern int	approval_tick_interval;

/* ---- actor.c ---- */

/* Who is acting: the principal id and the PostgreSQL role that stands for it */
typedef struct ApprovalActor
{
	char	   *id;				/* principal id, or a role name */
	Oid			roleid;			/* role whose memberships count, or InvalidOid */
	bool		is_admin;		/* that role has the privileges of approval_admin */
} ApprovalActor;

/* The targets one principal answers for; "delegated" when it is a delegator */
typedef struct ApprovalTargetSet
{
	char	   *principal;
	bool		delegated;
	List	   *targets;		/* C strings, sorted */
} ApprovalTargetSet;

extern void approval_get_actor(ApprovalActor *actor);
extern List *approval_actor_target_sets(const ApprovalActor *actor,
										const char *workflow);
extern ArrayType *approval_flatten_targets(List *sets);
extern int	approval_cmp_cstring(const ListCell *a, const ListCell *b);

/* ---- spi_util.c: prepared statements kept for the backend's life ---- */

typedef struct ApprovalPlan
{
	const char *sql;
	int			nargs;
	Oid			argtypes[10];
	SPIPlanPtr	plan;
} ApprovalPlan;

extern int	approval_exec(ApprovalPlan *p, Datum *values, const char *nulls,
						  bool read_only, long count);
extern void approval_spi_connect(void);
extern void approval_spi_finish(void);
extern Datum approval_getdatum(int row, int col, bool *isnull);
extern char *approval_gettext(int row, int col);
extern bool approval_getbool(int row, int col);
extern int32 approval_getint32(int row, int col);
extern int64 approval_getint64(int row, int col);
extern Datum approval_copy_datum(int row, int col, bool *isnull);
extern ArrayType *approval_text_array(List *strings);
extern List *approval_array_to_list(ArrayType *arr);
extern bool approval_arrays_overlap(ArrayType *a, ArrayType *b);

/* ---- event.c ---- */

extern void approval_event(int64 request_id, const char *kind, const char *actor,
						   Jsonb *data, const char *workflow, const char *state,
						   const char *stage, ArrayType *targets);

#endif							/* APPROVAL_H */
