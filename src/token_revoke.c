/*-------------------------------------------------------------------------
 *
 * token_revoke.c
 *	  Voiding actionable tokens (token.c) before they are used:
 *	  revoke_tokens() for a request's, and the trigger that voids a
 *	  principal's when it is made inactive, renamed or removed.
 *
 * Both set approval.token.revoked_at on unused rows; an UPDATE takes the
 * rows' locks, so a revocation and a redemption (which locks its token's
 * row FOR UPDATE) are ordered: whichever comes second sees the other's
 * result (isolation specs redeem_vs_revoke, redeem_vs_deactivate).
 *
 *-------------------------------------------------------------------------
 */
#include "approval.h"

#include "access/htup_details.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

static ApprovalPlan revoke_plan = {
	"UPDATE approval.token SET revoked_at = $2"
	" WHERE request_id = $1 AND used_at IS NULL AND revoked_at IS NULL",
	2, {INT8OID, TIMESTAMPTZOID}
};

static ApprovalPlan revoke_approver_plan = {
	"UPDATE approval.token SET revoked_at = $2"
	" WHERE approver = $1 AND used_at IS NULL AND revoked_at IS NULL",
	2, {TEXTOID, TIMESTAMPTZOID}
};

static ApprovalPlan request_exists_plan = {
	"SELECT 1 FROM approval.request WHERE id = $1",
	1, {INT8OID}
};

/* revoke_tokens(request) → integer: void every unused token of the request */
PG_FUNCTION_INFO_V1(approval_revoke_tokens);
Datum
approval_revoke_tokens(PG_FUNCTION_ARGS)
{
	ApprovalActor caller;
	Datum		args[2];
	int			n;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	approval_spi_connect();
	approval_get_actor(&caller);
	if (!caller.is_admin)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only an %s may revoke tokens", APPROVAL_ADMIN_ROLE)));
	args[0] = PG_GETARG_DATUM(0);
	if (approval_exec(&request_exists_plan, args, NULL, false, 1) != 1)
		approval_not_found(PG_GETARG_INT64(0));
	args[1] = TimestampTzGetDatum(GetCurrentTimestamp());
	n = approval_exec(&revoke_plan, args, NULL, false, 0);
	approval_spi_finish();
	PG_RETURN_INT32(n);
}

/*
 * Trigger on approval.principal, for each row updated or deleted: a
 * principal made inactive, renamed or removed loses its unused tokens for
 * good.  Without it, such a token would only be refused while the principal
 * is inactive, and would work again once it is active again, or for
 * whoever is given the id next.  SECURITY DEFINER: whoever may change
 * principals (approval_admin) may not write approval.token.
 */
PG_FUNCTION_INFO_V1(approval_token_principal_changed);
Datum
approval_token_principal_changed(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	bool		isnull;
	Datum		old_id;
	Datum		args[2];

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		!(TRIGGER_FIRED_BY_UPDATE(td->tg_event) || TRIGGER_FIRED_BY_DELETE(td->tg_event)) ||
		RelationGetRelid(td->tg_relation) != approval_relid("principal"))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("approval.token_principal_changed() must be an AFTER UPDATE OR DELETE row trigger on approval.principal")));
	desc = td->tg_relation->rd_att;
	old_id = heap_getattr(td->tg_trigtuple, SPI_fnumber(desc, "id"), desc, &isnull);
	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		Datum		new_id = heap_getattr(td->tg_newtuple, SPI_fnumber(desc, "id"), desc, &isnull);
		Datum		active = heap_getattr(td->tg_newtuple, SPI_fnumber(desc, "active"), desc, &isnull);

		if (!isnull && DatumGetBool(active) &&
			DatumGetBool(DirectFunctionCall2Coll(texteq, C_COLLATION_OID, old_id, new_id)))
			return PointerGetDatum(NULL);	/* still active under its id */
	}
	approval_spi_connect();
	args[0] = old_id;
	args[1] = TimestampTzGetDatum(GetCurrentTimestamp());
	approval_exec(&revoke_approver_plan, args, NULL, false, 0);
	approval_spi_finish();
	return PointerGetDatum(NULL);
}
