/*-------------------------------------------------------------------------
 *
 * replay.h
 *	  Folding a request's events into the rows they call for (replay.c),
 *	  for verify_audit() (audit.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef APPROVAL_REPLAY_H
#define APPROVAL_REPLAY_H

#include "nodes/pg_list.h"
#include "lib/stringinfo.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

/* A stage as its events leave it */
typedef struct ReplayStage
{
	char	   *stage;
	const char *state;
	int			round;
	int			required;		/* -1: not known from the events */
	int			approvals;
	int			rejections;
	List	   *targets;
	TimestampTz activated_at;	/* 0: never activated */
	bool		activated_known;	/* by an actor (the timer's "at" is not kept) */
	TimestampTz decided_at;		/* 0: not decided */
	bool		decided_known;
	bool		has_row;
} ReplayStage;

typedef struct Replay
{
	int64		request_id;
	int			events;
	const char *state;			/* NULL before "submitted" */
	char	   *requester;
	char	   *workflow;
	TimestampTz decided_at;
	bool		decided_known;
	int			escalations;
	int			restarts;		/* resubmissions that restarted every stage */
	bool		auto_approved;
	TimestampTz auto_approved_at;
	TimestampTz submitted_at;
	int			version;		/* of the workflow, -1: not known from the events */
	bool		has_title;		/* the submitted event records title and subject */
	char	   *title;
	bool		has_subject;
	char	   *subject;
	/* the stages of the request's workflow version, from its definition */
	bool		has_def;
	const char *def_workflow;
	int			def_version;
	List	   *def_names;
	List	   *def_idx;		/* int */
	List	   *def_orders;		/* int */
	List	   *def_seen;		/* int: 1 once a row was found */
	List	   *stages;			/* ReplayStage */
	List	   *expected;		/* decision keys the events call for */
	List	   *actual;			/* decision keys of the rows */
	int			nproblems;
	StringInfoData problems;	/* "; "-separated, the first few */
} Replay;

/* The columns of a request row that the events decide */
typedef struct ReplayRequestRow
{
	const char *workflow;
	const char *requester;
	const char *state;
	TimestampTz decided_at;		/* 0: NULL */
	int			escalations;
	const char *title;
	const char *subject;
	TimestampTz created_at;
	/* its workflow version (approval.workflow by workflow_id): NULL if none */
	const char *def_workflow;
	int			def_version;
	List	   *def_names;		/* its stages, by index */
	List	   *def_idx;		/* int */
	List	   *def_orders;		/* int */
} ReplayRequestRow;

typedef struct ReplayStageRow
{
	const char *stage;
	int			idx;
	int			order;
	const char *state;
	int			round;
	int			required;
	int			approvals;
	int			rejections;
	List	   *targets;
	TimestampTz activated_at;	/* 0: NULL */
	TimestampTz decided_at;
} ReplayStageRow;

extern void replay_begin(Replay *rp, int64 request_id);
extern void replay_event(Replay *rp, int64 seq, const char *kind, const char *actor,
						 TimestampTz at, Jsonb *data, const char *stored_state);
extern void replay_check_request(Replay *rp, const ReplayRequestRow *row);
extern void replay_check_stage(Replay *rp, const ReplayStageRow *row);
extern char *replay_decision_key(const char *decision, const char *stage, int round,
								 const char *actor, const char *on_behalf_of,
								 bool override, const char *reason, const char *comment);
extern void replay_check_decision(Replay *rp, const char *key);
extern void replay_end(Replay *rp);

#endif							/* APPROVAL_REPLAY_H */
