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
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/tuplestore.h"
#include "nodes/pg_list.h"
#include "utils/array.h"
#include "common/cryptohash.h"
#include "utils/jsonb.h"
#include "utils/jsonpath.h"
#include "utils/snapshot.h"
#include "utils/timestamp.h"

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
#define ERRCODE_AP_UNKNOWN_PRINCIPAL		MAKE_SQLSTATE('A','P','0','1','2')
#define ERRCODE_AP_SUBJECT_UNDER_REVIEW		MAKE_SQLSTATE('A','P','0','1','3')

/* Names of the roles the extension creates */
#define APPROVAL_ADMIN_ROLE		"approval_admin"
#define APPROVAL_USER_ROLE		"approval_user"
#define APPROVAL_GATEWAY_ROLE	"approval_gateway"

/* GUCs (approval.c) */
extern char *approval_actor;
extern char *approval_actor_claim;
/* approval.notify: when events are sent with NOTIFY */
typedef enum ApprovalNotifyMode
{
	APPROVAL_NOTIFY_OFF,
	APPROVAL_NOTIFY_COMMIT,		/* by the writing transaction, at its commit */
	APPROVAL_NOTIFY_RELAY		/* by the background worker, after commit */
} ApprovalNotifyMode;

/* approval.notify_payload: what a notification says */
typedef enum ApprovalPayloadMode
{
	APPROVAL_PAYLOAD_FULL,
	APPROVAL_PAYLOAD_MINIMAL	/* seq, kind and request only */
} ApprovalPayloadMode;

extern int	approval_notify;
extern int	approval_notify_payload;
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
	bool		sees_all;		/* admin, or a gateway not acting for anyone */
	const char *cache_key;		/* its entry in the actor cache, if any */
} ApprovalActor;

/* The targets one principal answers for; "delegated" when it is a delegator */
typedef struct ApprovalTargetSet
{
	char	   *principal;
	bool		delegated;
	char	   *scope;			/* the one workflow a delegation covers, or NULL */
	List	   *targets;		/* C strings, sorted */
} ApprovalTargetSet;

typedef enum ApprovalPrincipalState
{
	PRINCIPAL_MISSING,
	PRINCIPAL_INACTIVE,
	PRINCIPAL_ACTIVE
} ApprovalPrincipalState;

/* target.c */
extern ApprovalPrincipalState approval_principal_state(const char *id);

extern void approval_get_actor(ApprovalActor *actor);
extern void approval_get_actor_as(ApprovalActor *actor, const char *id);
extern List *approval_actor_target_sets(const ApprovalActor *actor,
										const char *workflow);
extern ArrayType *approval_flatten_targets(List *sets);
extern int64 approval_delegation_create(const char *delegator, const char *delegate,
										const TimestampTz *starts, const TimestampTz *ends,
										const char *workflow, const char *created_by,
										const char *reason);

/* ---- claims.c: the actor a gateway session's JWT names ---- */

extern char *approval_claimed_actor(Oid gateway);

/* ---- visibility.c: who may see a request (DESIGN §8), the one home of the rule ---- */

extern bool approval_actor_sees_request(const ApprovalActor *actor, int64 request_id);
extern void approval_not_found(int64 request_id) pg_attribute_noreturn();


/* ---- spi_util.c: prepared statements kept for the backend's life ---- */

#define APPROVAL_PLAN_MAX_ARGS 40

typedef struct ApprovalPlan
{
	const char *sql;
	int			nargs;
	Oid			argtypes[APPROVAL_PLAN_MAX_ARGS];
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
extern bool approval_list_has(List *strings, const char *s);

extern void approval_exec_prepare(ApprovalPlan *p);
extern Oid	approval_relid(const char *relname);
extern void approval_retire_context(MemoryContext *cxt);
extern Tuplestorestate *approval_srf_init(FunctionCallInfo fcinfo, TupleDesc *desc);

/* A cursor read batch by batch, beside others */
typedef struct ApprovalStream
{
	Portal		portal;
	SPITupleTable *batch;
	uint64		pos;
	bool		done;
} ApprovalStream;

extern void approval_stream_open(ApprovalStream *s, ApprovalPlan *p, Datum *values,
								 const char *nulls);
extern void approval_stream_none(ApprovalStream *s);
extern bool approval_stream_peek(ApprovalStream *s);
extern void approval_stream_next(ApprovalStream *s);
extern Datum approval_stream_get(ApprovalStream *s, int col, bool *isnull);
extern void approval_stream_close(ApprovalStream *s);

/* A small builder for the jsonb objects of event data */
typedef struct ApprovalJson
{
	StringInfoData buf;
} ApprovalJson;

extern void aj_init(ApprovalJson *j);
extern void aj_str(ApprovalJson *j, const char *key, const char *value);
extern void aj_int(ApprovalJson *j, const char *key, int64 value);
extern void aj_bool(ApprovalJson *j, const char *key, bool value);
extern void aj_list(ApprovalJson *j, const char *key, List *strings);
extern Jsonb *aj_finish(ApprovalJson *j);
extern Jsonb *approval_jsonb_empty(void);

/* ---- define.c: workflow definitions ---- */

/* The callbacks of a workflow (DESIGN §4), in the order of their keys */
typedef enum ApprovalCallback
{
	CALLBACK_SUBMITTED,
	CALLBACK_APPROVED,
	CALLBACK_REJECTED,
	CALLBACK_CANCELLED,
	CALLBACK_EXPIRED,
	CALLBACK_COUNT
} ApprovalCallback;

extern const char *const approval_callback_keys[CALLBACK_COUNT];

typedef struct StageDef
{
	char	   *name;
	int			idx;			/* position in the "stages" array */
	int			order;			/* stages of the same order run in parallel */
	List	   *approvers;		/* target strings as written */
	int			min_approvals;	/* 0 means "all" */
	bool		reject_by_quorum;
	int			reject_quorum;
	JsonPath   *when;			/* NULL: always runs */
	char	   *denial_message;
	Interval   *timeout;		/* NULL: none */
	char	   *on_timeout;
} StageDef;

typedef struct WorkflowDef
{
	int32		id;
	char	   *name;
	int32		version;
	int32		priority;
	bool		enabled;
	char	   *description;
	JsonPath   *match;
	bool		match_uses_workflow;	/* does "match" mention $workflow? */
	JsonPath   *auto_approve;
	char	   *require_ack;
	bool		allow_self_approval;
	bool		distinct_approvers;
	bool		reapprove_all;	/* reapprove_on_change = "all" */
	Interval   *sla;
	double		sla_warning;
	char	   *calendar;
	Interval   *escalate_after;
	Interval   *escalate_every;
	char	   *escalate_to;
	Interval   *expires_after;
	bool		sla_pauses;		/* the SLA clock stops while changes are requested */
	int			escalate_max;	/* 0: no limit */
	char	   *callbacks[CALLBACK_COUNT];	/* "schema.fn(bigint)", or NULL */
	char	   *search_path;	/* the definer's, for callbacks */
	Oid			created_by;
	int			nstages;
	StageDef   *stages;
} WorkflowDef;

#define APPROVAL_MAX_NAME_LEN 200	/* of a workflow or stage name */

extern WorkflowDef *approval_workflow_get(int32 id);
extern WorkflowDef *approval_workflow_by_name(const char *name);
extern void approval_definitions_changed(void);
extern List *approval_enabled_workflows(void);
extern int32 approval_latest_version(const char *name, bool *enabled);
extern bool approval_target_valid(const char *target);

extern WorkflowDef *approval_parse_definition(Jsonb *doc, const char *search_path);
extern void approval_definition_error(const char *path, const char *msg,
									  const char *hint) pg_attribute_noreturn();

/* ---- callback.c ---- */

extern Oid	approval_check_callback(const char *name, const char *search_path, Oid definer,
									const char *key);
extern void approval_run_callback(const WorkflowDef *wf, ApprovalCallback which,
								  int64 request_id);

/* ---- target.c ---- */

extern List *approval_resolve_targets(const char *requester, StageDef *st);
extern int	approval_count_principals(List *targets);

/* ---- route.c ---- */

extern WorkflowDef *approval_route(Jsonb *payload, const char *requester);

/* ---- condition.c: jsonpath predicates ---- */

extern JsonPath *approval_parse_condition(const char *path, const char *text);
extern bool approval_condition_holds(JsonPath *cond, Jsonb *payload, Jsonb *vars);
extern Jsonb *approval_requester_json(const char *requester);
extern Jsonb *approval_make_vars(Jsonb *requester, const char *workflow);
extern bool approval_condition_uses_workflow(JsonPath *cond);

/* ---- calendar.c ---- */

/* (the arithmetic is business_time.c's, the calendars' cache calendar.c's) */

/* business time on a named calendar (DESIGN §6) */
extern TimestampTz approval_business_add(const char *calendar, TimestampTz start,
										 const Interval *amount);
/* microseconds of business time in [since, until); negative when until < since */
extern int64 approval_business_elapsed(const char *calendar, TimestampTz since,
									   TimestampTz until);
extern bool approval_calendar_exists(const char *name);

/* ---- event.c ---- */

/* Events of one operation on one request, written together at its end */
typedef struct ApprovalEvents
{
	int64		request_id;		/* 0: an event without a request */
	const char *workflow;
	bytea	   *prev_hash;		/* head of the request's chain */
	List	   *pending;
} ApprovalEvents;

extern void approval_events_init(ApprovalEvents *ev, int64 request_id,
								 const char *workflow, bytea *prev_hash);
extern void approval_event_add(ApprovalEvents *ev, const char *kind, const char *actor,
							   Jsonb *data, const char *state, const char *stage,
							   List *targets);
extern bytea *approval_events_seal(ApprovalEvents *ev);
extern void approval_events_write(ApprovalEvents *ev);
extern bytea *approval_event_hash(const bytea *prev, int64 seq, int64 request_id,
								  TimestampTz at, const char *kind, const char *actor,
								  Jsonb *data);
extern void approval_hash_int64(pg_cryptohash_ctx *ctx, int64 v);
extern bool approval_same_hash(const bytea *a, const bytea *b);

/* ---- purge.c: retention ---- */

extern bool approval_purge_allows(int64 request_id);

/* ---- checkpoint.c: a hash chain over the whole log ---- */

extern int	approval_checkpoint_interval;
extern void approval_checkpoint_from_worker(void);
extern void approval_checkpoints_verify(Tuplestorestate *ts, TupleDesc desc,
										const bytea *witness);
extern void approval_event_alone(const char *kind, const char *actor, Jsonb *data,
								 List *targets);

/* ---- horizon.c: the gapless cursor of the event log ---- */

extern void approval_horizon_init(void);
extern int64 approval_event_next_seq(void);
extern void approval_event_relay(void);
extern int64 approval_event_horizon(Snapshot *snap, bool *held);

/* ---- notify.c: what a listener is told of an event ---- */

typedef struct ApprovalNote
{
	int64		seq;
	const char *kind;
	int64		request;		/* 0: none (JSON null) */
	const char *workflow;
	const char *state;			/* the request's, once the event happened */
	const char *stage;
	const char *actor;
	List	   *targets;		/* C strings: who must act next */
	TimestampTz at;
	Jsonb	   *data;			/* NULL: not in the object */
} ApprovalNote;

extern char *approval_note_json(const ApprovalNote *n, bool minimal, int limit);
extern void approval_note_send(const ApprovalNote *n);

/* ---- relay.c: approval.notify = relay ---- */

extern bool approval_relay_available(void);
extern void approval_relay_committed(bool relayed);

/* ---- launcher.c, worker.c: the background worker (DESIGN §6) ---- */

/* from _PG_init: when preloaded, the shared memory and the launcher */
extern void approval_worker_init(void);
/* a commit may create a deadline at next_due: wake the worker if it sleeps past it */
extern void approval_worker_hint(TimestampTz next_due);

#endif							/* APPROVAL_H */
